"""The store's tables (SQLAlchemy Core), as the latest migration leaves them.

Three tables, prefixed ``walletfaq_`` so that they are recognisable in a shared database:

- ``walletfaq_head``: one row (``id = 1``): the latest revision and the next free position.
  Writers lock it (``SELECT ... FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so
  revision numbers are assigned one at a time.
- ``walletfaq_revisions``: one row per revision: number (from 1), time (UTC), author, reason,
  kind (``import``, ``edit``, ``rollback``) and, for a rollback, the revision it restores.
- ``walletfaq_entry_versions``: one row per entry changed in a revision: the entry's content
  after the change, or ``deleted``. The content of the store at revision N is, for each entry,
  its latest version at or before N. Read by revision, these rows are the change feed.

The migrations (``walletfaq/store/migrations``) create these tables; a test checks that the
migrated database matches this module.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

MAX_ID_CHARS = 500
"""The longest entry id the store holds."""

metadata = MetaData()

head = Table(
    "walletfaq_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("revision", Integer, nullable=False),
    Column("next_position", Integer, nullable=False),
    CheckConstraint("id = 1", name="walletfaq_head_single_row"),
)

revisions = Table(
    "walletfaq_revisions",
    metadata,
    Column("number", Integer, primary_key=True, autoincrement=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("author", String(200), nullable=False),
    Column("reason", Text, nullable=True),
    Column("kind", String(16), nullable=False),
    Column("restores", Integer, nullable=True),
)

entry_versions = Table(
    "walletfaq_entry_versions",
    metadata,
    Column("entry_id", String(MAX_ID_CHARS), nullable=False),
    Column(
        "revision",
        Integer,
        ForeignKey("walletfaq_revisions.number", name="walletfaq_entry_versions_revision_fkey"),
        nullable=False,
    ),
    Column("position", Integer, nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("category", Text, nullable=True),
    Column("question", Text, nullable=True),
    Column("answer", Text, nullable=True),
    Column("alt_questions", Text, nullable=True),
    PrimaryKeyConstraint("entry_id", "revision", name="walletfaq_entry_versions_pkey"),
    Index("walletfaq_entry_versions_by_revision", "revision"),
)
