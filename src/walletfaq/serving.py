"""Compatibility alias: the served-index holder moved to :mod:`walletfaq.service.holder`.

This module re-exports its public names, so existing imports such as
``from walletfaq.serving import ServedIndex`` keep working; new code imports from
:mod:`walletfaq.service.holder`. Nothing inside walletfaq imports this module. Like the
holder, it needs no web dependency.
"""

from __future__ import annotations

from walletfaq.service.holder import (
    LOCK_SUFFIX,
    NothingToReloadError,
    PersistError,
    ReloadError,
    ReloadMetrics,
    ReloadResult,
    Served,
    ServedIndex,
    manifest_checksum,
)

__all__ = [
    "LOCK_SUFFIX",
    "NothingToReloadError",
    "PersistError",
    "ReloadError",
    "ReloadMetrics",
    "ReloadResult",
    "Served",
    "ServedIndex",
    "manifest_checksum",
]
