"""The first schema: head, revisions, entry versions.

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "walletfaq_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("next_position", sa.Integer, nullable=False),
        sa.CheckConstraint("id = 1", name="walletfaq_head_single_row"),
    )
    op.create_table(
        "walletfaq_revisions",
        sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("restores", sa.Integer, nullable=True),
    )
    op.create_table(
        "walletfaq_entry_versions",
        sa.Column("entry_id", sa.String(500), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("category", sa.Text, nullable=True),
        sa.Column("question", sa.Text, nullable=True),
        sa.Column("answer", sa.Text, nullable=True),
        sa.Column("alt_questions", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("entry_id", "revision", name="walletfaq_entry_versions_pkey"),
        sa.ForeignKeyConstraint(
            ["revision"],
            ["walletfaq_revisions.number"],
            name="walletfaq_entry_versions_revision_fkey",
        ),
    )
    op.create_index(
        "walletfaq_entry_versions_by_revision", "walletfaq_entry_versions", ["revision"]
    )
    op.bulk_insert(
        sa.table(
            "walletfaq_head",
            sa.column("id", sa.Integer),
            sa.column("revision", sa.Integer),
            sa.column("next_position", sa.Integer),
        ),
        [{"id": 1, "revision": 0, "next_position": 0}],
    )


def downgrade() -> None:
    op.drop_index("walletfaq_entry_versions_by_revision", "walletfaq_entry_versions")
    op.drop_table("walletfaq_entry_versions")
    op.drop_table("walletfaq_revisions")
    op.drop_table("walletfaq_head")
