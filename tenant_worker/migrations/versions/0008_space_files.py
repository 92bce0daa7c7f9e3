"""Files in shared spaces: which space a file lives in, and who wrote it there.

``files.space_id`` names the space (NULL: a user's own file, as before);
``created_by`` and ``updated_by`` hold its authors as ``space_objects`` does (a
user id, or an erased author's pseudonym). Existing files stay personal.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("files", sa.Column("space_id", sa.String(32), nullable=True))
    op.add_column("files", sa.Column("created_by", sa.String(41), nullable=True))
    op.add_column("files", sa.Column("updated_by", sa.String(41), nullable=True))
    op.create_index("ix_files_space_id", "files", ["space_id"])


def downgrade() -> None:
    op.drop_index("ix_files_space_id", table_name="files")
    op.drop_column("files", "updated_by")
    op.drop_column("files", "created_by")
    op.drop_column("files", "space_id")
