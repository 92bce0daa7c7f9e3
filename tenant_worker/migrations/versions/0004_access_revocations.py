"""Access revocations: tokens of an identity (or of everyone) issued before a time are refused.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tenant_worker.storage._models import AutoId, UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_revocations",
        sa.Column("id", AutoId, primary_key=True, autoincrement=True),
        sa.Column("identity", sa.String(64), nullable=True),
        sa.Column("revoked_before", UTCDateTime(), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("requested_by", sa.String(16), nullable=False),
        sa.Column("correlation_id", sa.String(128), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("access_revocations")
