"""Files: metadata and chunked bytes in the tenant's database (backups carry them).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tenant_worker.storage._models import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "owner", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("declared_type", sa.String(255), nullable=False),
        sa.Column("sniffed_type", sa.String(255), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("content", sa.String(32), nullable=True),
        sa.Column("chunk_bytes", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("correlation_id", sa.String(128), nullable=False),
    )
    op.create_index("ix_files_owner", "files", ["owner"])
    op.create_index("ix_files_expires_at", "files", ["expires_at"])
    op.create_index("ix_files_updated_at", "files", ["updated_at"])
    op.create_table(
        "file_chunks",
        sa.Column("content", sa.String(32), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column(
            "file_id",
            sa.String(32),
            sa.ForeignKey("files.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_file_chunks_file_id", "file_chunks", ["file_id"])
    if op.get_bind().dialect.name == "postgresql":
        # File bytes are mostly compressed already (images, PDFs, audio): store them
        # out of line without trying to compress them again.
        op.execute("ALTER TABLE file_chunks ALTER COLUMN data SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.drop_table("file_chunks")
    op.drop_table("files")
