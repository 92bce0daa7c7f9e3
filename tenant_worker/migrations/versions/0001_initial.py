"""The tenant database: users, objects, preferences, idempotency keys, audit, usage.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tenant_worker.storage._models import USAGE_SLOTS, AutoId, JsonDocument, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


# Over 60 lines on purpose: a migration is one declarative body, the schema as it
# stood at this revision, read top to bottom; split into helpers it would no longer
# read as the schema, and it never changes once released.
def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("issuer", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("issuer", "subject", name="uq_users_issuer_subject"),
    )
    op.create_table(
        "objects",
        sa.Column(
            "owner", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("collection", sa.String(63), primary_key=True),
        sa.Column("object_id", sa.String(128), primary_key=True),
        sa.Column("data", JsonDocument, nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("correlation_id", sa.String(128), nullable=False),
    )
    op.create_index("ix_objects_expires_at", "objects", ["expires_at"])
    op.create_index("ix_objects_collection_updated_at", "objects", ["collection", "updated_at"])
    op.create_index(
        "ix_objects_collection_schema_version", "objects", ["collection", "schema_version"]
    )
    op.create_table(
        "preferences",
        sa.Column(
            "owner", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("data", JsonDocument, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("correlation_id", sa.String(128), nullable=False),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column(
            "owner", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("operation", sa.String(32), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("response", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])
    op.create_table(
        "audit_events",
        sa.Column("id", AutoId, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("collection", sa.String(63), nullable=True),
        sa.Column("object_id", sa.String(128), nullable=True),
        sa.Column("version", sa.BigInteger(), nullable=True),
        sa.Column("correlation_id", sa.String(128), nullable=False),
        sa.Column("detail", JsonDocument, nullable=True),
    )
    op.create_index("ix_audit_events_user_id", "audit_events", ["user_id"])
    usage = op.create_table(
        "usage",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("objects", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(usage, [{"id": i, "objects": 0, "bytes": 0} for i in range(USAGE_SLOTS)])


def downgrade() -> None:
    for table in ("usage", "audit_events", "idempotency_keys", "preferences", "objects", "users"):
        op.drop_table(table)
