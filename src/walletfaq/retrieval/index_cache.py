"""Built indexes kept in the user cache (``<cache_dir>/indexes/<key>``), so that building the
same corpus with the same model and settings again loads instead of embedding.

The key (:func:`walletfaq.retrieval.embedding.cache_key`) covers everything that changes the
vectors: the model fingerprint, the corpus hash and the index settings. A cached index that
cannot be used (damaged, from another version) is rebuilt and replaced; one whose model cannot be
loaded raises, since rebuilding would fail the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from walletfaq.errors import ModelError, WalletFAQError

logger = logging.getLogger(__name__)

T = TypeVar("T")


def load_or_build(
    location: Path,
    *,
    load: Callable[[], T],
    build: Callable[[], T],
    save: Callable[[T], object],
) -> T:
    """``load()`` the index cached at ``location`` if there is a usable one, else ``build()``
    it and ``save()`` it there for later runs (a failed save only warns: the built index is
    answered from memory)."""
    if location.exists():
        try:
            return load()
        except (WalletFAQError, OSError, RuntimeError, MemoryError) as exc:
            if isinstance(exc, ModelError):
                raise
            logger.warning("cached index %s unusable (%s); rebuilding it", location, exc)
    built = build()
    logger.info("saving the index to the cache (%s) for later runs", location)
    try:
        save(built)
    except WalletFAQError as exc:
        logger.warning("cannot cache the index (%s); answering from memory", exc)
    return built
