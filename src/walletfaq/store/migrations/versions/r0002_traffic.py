"""The traffic loop: query log, feedback, staged changes, gap proposals; forced publishes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ALTER TABLE ... ADD COLUMN in place, on SQLite too, with a constant default: rebuilding
    # the table (copy, drop, rename: what Alembic does on SQLite for an expression default)
    # is refused by the entry versions' foreign key once the store holds revisions
    op.add_column(
        "walletfaq_revisions",
        sa.Column("forced", sa.Boolean, nullable=False, server_default="0"),
    )
    op.create_table(
        "walletfaq_queries",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("hits", sa.Text, nullable=False),
        sa.Column("top_score", sa.Float, nullable=True),
        sa.Column("margin", sa.Float, nullable=True),
        sa.Column("revision", sa.Integer, nullable=True),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
    )
    op.create_index("walletfaq_queries_by_time", "walletfaq_queries", ["created_at"])
    op.create_table(
        "walletfaq_feedback",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("helpful", sa.Boolean, nullable=False),
        sa.Column("entry_id", sa.String(500), nullable=True),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["walletfaq_queries.request_id"],
            name="walletfaq_feedback_request_fkey",
        ),
    )
    op.create_table(
        "walletfaq_staged",
        sa.Column("position", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("op", sa.String(8), nullable=False),
        sa.Column("entry_id", sa.String(500), nullable=False),
        sa.Column("entry", sa.Text, nullable=True),
        sa.Column("base_revision", sa.Integer, nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("proposal_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "walletfaq_proposals",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", sa.String(500), nullable=True),
        sa.Column("questions", sa.Text, nullable=False),
        sa.Column("suggested_question", sa.Text, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("decided_by", sa.String(200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revision", sa.Integer, nullable=True),
    )
    op.create_index("walletfaq_proposals_by_status", "walletfaq_proposals", ["status"])


def downgrade() -> None:
    op.drop_index("walletfaq_proposals_by_status", "walletfaq_proposals")
    op.drop_table("walletfaq_proposals")
    op.drop_table("walletfaq_staged")
    op.drop_table("walletfaq_feedback")
    op.drop_index("walletfaq_queries_by_time", "walletfaq_queries")
    op.drop_table("walletfaq_queries")
    with op.batch_alter_table("walletfaq_revisions") as batch:
        batch.drop_column("forced")
