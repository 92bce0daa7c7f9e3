"""Objects that name files: the file ids a version names, on the object's own row.

``objects.files`` and ``space_objects.files`` hold a JSON array of file ids, or
NULL when the version names none: a save or a read of an object without files
writes and reads nothing more than before. A file's ``linked_from`` looks them
up within one user's (or one space's) objects, by the primary key's prefix.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tenant_worker.storage._models import JsonDocument

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("objects", sa.Column("files", JsonDocument, nullable=True))
    op.add_column("space_objects", sa.Column("files", JsonDocument, nullable=True))


def downgrade() -> None:
    op.drop_column("space_objects", "files")
    op.drop_column("objects", "files")
