"""Files in a Region's object store: where each file's bytes are, and the objects to delete.

``files.storage`` says where the current content's bytes are: ``database`` (its
``file_chunks``) or ``bucket`` (one object under the tenant's key prefix).
``file_object_deletions`` holds the keys of objects to delete once ``due_at``
has passed: written in the same transaction as the metadata change that
orphans them (a delete, a purge, an erasure, a new version), and for an upload
while it streams (due after it could still be running), so an object is never
left behind by a failure on either side.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tenant_worker.storage._models import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "files",
        sa.Column("storage", sa.String(16), nullable=False, server_default="database"),
    )
    op.create_table(
        "file_object_deletions",
        sa.Column("key", sa.String(1024), primary_key=True),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
    )
    op.create_index("ix_file_object_deletions_due_at", "file_object_deletions", ["due_at"])


def downgrade() -> None:
    op.drop_table("file_object_deletions")
    op.drop_column("files", "storage")
