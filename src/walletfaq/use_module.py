"""Alias kept for model folders on disk: the use-m3 preset's ``modules.json`` names its module
type ``walletfaq.use_module.USEM3Encoder`` (:data:`~walletfaq.encoders.use_module.MODULE_TYPE`),
and sentence-transformers imports that path to load the folder. The code lives in
:mod:`walletfaq.encoders.use_module`."""

from walletfaq.encoders.use_module import USEM3Encoder

__all__ = ["USEM3Encoder"]
