"""What every part of the :class:`~walletfaq.store.Store` shares: its engine and URL, and its
read and write transactions (the database's own errors turned into one-line StoreErrors).

The store's methods are grouped by concern, each group a class deriving from
:class:`StoreCore`: the content and its history (:mod:`walletfaq.store.store`), the query log
and feedback (:mod:`walletfaq.store.traffic`), staging and publishing
(:mod:`walletfaq.store.staging`), gap proposals (:mod:`walletfaq.store.proposals`).
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from sqlalchemy import Connection, Engine

from walletfaq.store.engine import read_transaction, redact, write_transaction
from walletfaq.store.writer import guarded


class StoreCore:
    """A store's connection to its database (see :class:`walletfaq.store.Store`)."""

    def __init__(self, engine: Engine, url: str) -> None:
        self._engine = engine
        self._url = url

    @property
    def url(self) -> str:
        """The store's URL (password hidden)."""
        return redact(self._url)

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for the change-feed follower and tests)."""
        return self._engine

    def close(self) -> None:
        """Close the store's connections."""
        self._engine.dispose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.url!r})"

    def _reading(self) -> AbstractContextManager[Connection]:
        """A read transaction: one consistent state of the store."""
        return guarded(read_transaction(self._engine), self.url)

    def _writing(self) -> AbstractContextManager[Connection]:
        """A write transaction (on SQLite it holds the database's write lock from the start;
        a writer of revisions also locks the head row, see :func:`~.writer.lock_head`)."""
        return guarded(write_transaction(self._engine), self.url)
