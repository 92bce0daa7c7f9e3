"""Per-user usage totals, for per-user quotas; filled from the objects already stored.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_usage",
        sa.Column(
            "owner", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("objects", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
    )
    op.execute(
        "INSERT INTO user_usage (owner, objects, bytes) "
        "SELECT owner, count(*), coalesce(sum(size_bytes), 0) FROM objects GROUP BY owner"
    )


def downgrade() -> None:
    op.drop_table("user_usage")
