"""The store of record: FAQ entries with their revision history on SQLite or PostgreSQL.

Needs the ``store`` extra (SQLAlchemy 2, Alembic, psycopg 3, openpyxl)::

    pip install 'walletfaq[store]'

>>> from walletfaq import open_store                   # doctest: +SKIP
>>> store = open_store("faq.db")
>>> store.entries().ids[:3], store.log()[-1].author

Modules: :mod:`~walletfaq.store.store` (the :class:`Store`), :mod:`~walletfaq.store.records`
(edits and results), :mod:`~walletfaq.store.traffic` (query log, feedback, retention),
:mod:`~walletfaq.store.staging` (staging, publishing), :mod:`~walletfaq.store.proposals` (gap
proposals), :mod:`~walletfaq.store.traffic_records` (their records and rules),
:mod:`~walletfaq.store.writer` (writing a revision), :mod:`~walletfaq.store.core` (connection,
transactions), :mod:`~walletfaq.store.imports` (JSONL/CSV/XLSX in and out),
:mod:`~walletfaq.store.schema` (tables), :mod:`~walletfaq.store.migrate` (Alembic, on open),
:mod:`~walletfaq.store.engine` (URLs, SQLite/PostgreSQL set-up).
"""

from __future__ import annotations

from walletfaq.errors import StoreError

try:
    import alembic  # noqa: F401
    import sqlalchemy  # noqa: F401
except ImportError as _missing:
    raise StoreError(
        f"the store needs {_missing.name!r}, which is not installed; install the store extra: "
        "pip install 'walletfaq[store]'"
    ) from None

from walletfaq.store.records import Change, EntryDiff, EntryVersion, Revision, StoreDiff  # noqa: E402
from walletfaq.store.store import NOTIFY_CHANNEL, Store  # noqa: E402
from walletfaq.store.traffic_records import (  # noqa: E402
    DECISIONS,
    Feedback,
    LoggedQuery,
    NewProposal,
    Proposal,
    PublishConflictError,
    QueryHit,
    QueryRecord,
    StagedChange,
    StagedChangedError,
    UnknownProposalError,
    UnknownRequestError,
)


def open_store(location: str, *, create: bool = False) -> Store:
    """Open the store of record at ``location``: an SQLite file path or a database URL
    (``postgresql://user@host/db``). See :meth:`Store.open`."""
    return Store.open(location, create=create)


__all__ = [
    "DECISIONS",
    "NOTIFY_CHANNEL",
    "Change",
    "EntryDiff",
    "EntryVersion",
    "Feedback",
    "LoggedQuery",
    "NewProposal",
    "Proposal",
    "PublishConflictError",
    "QueryHit",
    "QueryRecord",
    "Revision",
    "StagedChange",
    "StagedChangedError",
    "Store",
    "StoreDiff",
    "UnknownProposalError",
    "UnknownRequestError",
    "open_store",
]
