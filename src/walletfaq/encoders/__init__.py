"""Layer 2, encoders: text in, unit vectors out, as used at query time.

The :class:`~walletfaq.encoders.protocol.Encoder` protocol; the sentence-transformers encoder
(:mod:`~walletfaq.encoders.sentence_transformer`); the offline presets
(:mod:`~walletfaq.encoders.presets`) and the converters that derive their folders
(:mod:`~walletfaq.encoders.e5_convert`, :mod:`~walletfaq.encoders.use_module`); tuned
encoders as a saved index uses them (:mod:`~walletfaq.encoders.adapted`,
:mod:`~walletfaq.encoders.finetuned`) and how they are restored from a manifest
(:mod:`~walletfaq.encoders.restore`). Training them lives in :mod:`walletfaq.quality.tuning`,
which nothing here imports. Imports only :mod:`walletfaq.data` below it.
"""
