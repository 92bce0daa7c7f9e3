"""A per-database key for pseudonymising an erased user's audit trail.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import op

from tenant_worker.storage._models import AUDIT_KEY

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    keys = op.create_table(
        "keys",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
    )
    op.bulk_insert(keys, [{"name": AUDIT_KEY, "secret": os.urandom(32)}])


def downgrade() -> None:
    op.drop_table("keys")
