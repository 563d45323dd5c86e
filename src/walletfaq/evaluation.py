"""Compatibility alias: ``walletfaq.evaluation`` is now :mod:`walletfaq.quality.evaluation`.

Kept so that code written against the old path (``from walletfaq.evaluation import
METRIC_KEYS``) keeps working: it re-exports the public names of
:mod:`walletfaq.quality.evaluation` (its ``__all__``, the same objects) and nothing else. New
code should import from ``walletfaq.quality.evaluation`` (or ``walletfaq``). Nothing inside
walletfaq imports this module.
"""

from walletfaq.quality.evaluation import *  # noqa: F403 - the package's public names
from walletfaq.quality.evaluation import __all__  # noqa: F401 - and the same list of them
