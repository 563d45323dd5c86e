"""The store's tables (SQLAlchemy Core), as the latest migration leaves them.

The tables are prefixed ``walletfaq_`` so that they are recognisable in a shared database.
The content and its history (migration 0001):

- ``walletfaq_head``: one row (``id = 1``): the latest revision and the next free position.
  Writers lock it (``SELECT ... FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so
  revision numbers are assigned one at a time.
- ``walletfaq_revisions``: one row per revision: number (from 1), time (UTC), author, reason,
  kind (``import``, ``edit``, ``rollback``, ``publish``, ``proposal``), for a rollback the
  revision it restores, and whether a publish was forced past its quality gate (0002).
- ``walletfaq_entry_versions``: one row per entry changed in a revision: the entry's content
  after the change, or ``deleted``. The content of the store at revision N is, for each entry,
  its latest version at or before N. Read by revision, these rows are the change feed.

The traffic loop (migration 0002):

- ``walletfaq_queries``: one row per question answered (the query log), keyed by the
  ``request_id`` the service returns: time, the question (masked), the decision, the top hits
  (JSON), the top score and margin, the revision served, the latency and where it came from.
- ``walletfaq_feedback``: at most one row per logged query: helpful or not, the entry the user
  says was right, a comment (masked).
- ``walletfaq_staged``: changes staged for the next publish, in order; not a revision (replicas
  follow revisions only, so they never serve staged content).
- ``walletfaq_proposals``: proposed FAQ changes mined from the log (alt questions for an entry,
  or a new entry) and what a person decided.

The migrations (``walletfaq/store/migrations``) create these tables; a test checks that the
migrated database matches this module.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
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
    Column("forced", Boolean, nullable=False, server_default="0"),
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

MAX_REQUEST_ID_CHARS = 64
"""The longest request id (the query log's key)."""

queries = Table(
    "walletfaq_queries",
    metadata,
    Column("request_id", String(MAX_REQUEST_ID_CHARS), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("question", Text, nullable=False),
    Column("decision", String(16), nullable=False),
    Column("hits", Text, nullable=False),
    Column("top_score", Float, nullable=True),
    Column("margin", Float, nullable=True),
    Column("revision", Integer, nullable=True),
    Column("latency_ms", Float, nullable=False),
    Column("source", String(32), nullable=False),
    Index("walletfaq_queries_by_time", "created_at"),
)

feedback = Table(
    "walletfaq_feedback",
    metadata,
    Column(
        "request_id",
        String(MAX_REQUEST_ID_CHARS),
        ForeignKey("walletfaq_queries.request_id", name="walletfaq_feedback_request_fkey"),
        primary_key=True,
    ),
    Column("helpful", Boolean, nullable=False),
    Column("entry_id", String(MAX_ID_CHARS), nullable=True),
    Column("comment", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

staged = Table(
    "walletfaq_staged",
    metadata,
    Column("position", Integer, primary_key=True, autoincrement=True),
    Column("op", String(8), nullable=False),
    Column("entry_id", String(MAX_ID_CHARS), nullable=False),
    Column("entry", Text, nullable=True),
    Column("base_revision", Integer, nullable=False),
    Column("author", String(200), nullable=False),
    Column("reason", Text, nullable=True),
    Column("proposal_id", String(MAX_REQUEST_ID_CHARS), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

proposals = Table(
    "walletfaq_proposals",
    metadata,
    Column("id", String(MAX_REQUEST_ID_CHARS), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("target", String(MAX_ID_CHARS), nullable=True),
    Column("questions", Text, nullable=False),
    Column("suggested_question", Text, nullable=True),
    Column("status", String(16), nullable=False),
    Column("decided_by", String(200), nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Column("revision", Integer, nullable=True),
    Index("walletfaq_proposals_by_status", "status"),
)
