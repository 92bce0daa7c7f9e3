"""Shared spaces: user profiles, spaces, members, email invitations, objects, change feed.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tenant_worker.storage._models import JsonDocument, UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _space_id() -> sa.Column[str]:
    return sa.Column(
        "space_id",
        sa.String(32),
        sa.ForeignKey("spaces.id", ondelete="CASCADE"),
        primary_key=True,
    )


# Over 60 lines on purpose: the schema as it stood at this revision, read top to bottom.
def upgrade() -> None:
    op.create_table(
        "user_profiles",
        sa.Column(
            "user_id",
            sa.String(32),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("display_name", sa.Text(), nullable=True),
        sa.Column("email_digest", sa.String(64), nullable=True),
        sa.Column("org_digest", sa.String(64), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_user_profiles_email_digest", "user_profiles", ["email_digest"])
    op.create_table(
        "spaces",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("org_digest", sa.String(64), nullable=True, unique=True),
        sa.Column("owner", sa.String(32), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("objects", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "space_members",
        _space_id(),
        sa.Column(
            "user_id",
            sa.String(32),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("joined_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_space_members_user_id", "space_members", ["user_id"])
    op.create_table(
        "space_invites",
        _space_id(),
        sa.Column("email_digest", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column(
            "invited_by",
            sa.String(32),
            sa.ForeignKey("users.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_space_invites_email_digest", "space_invites", ["email_digest"])
    op.create_table(
        "space_objects",
        _space_id(),
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
        sa.Column("created_by", sa.String(41), nullable=False),
        sa.Column("updated_by", sa.String(41), nullable=False),
    )
    op.create_index("ix_space_objects_expires_at", "space_objects", ["expires_at"])
    op.create_index(
        "ix_space_objects_collection_updated_at", "space_objects", ["collection", "updated_at"]
    )
    op.create_index("ix_space_objects_created_by", "space_objects", ["created_by"])
    op.create_index("ix_space_objects_updated_by", "space_objects", ["updated_by"])
    op.create_table(
        "space_changes",
        _space_id(),
        sa.Column("seq", sa.BigInteger(), primary_key=True),
        sa.Column("collection", sa.String(63), nullable=False),
        sa.Column("object_id", sa.String(128), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("author", sa.String(41), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("correlation_id", sa.String(128), nullable=False),
    )
    op.create_index("ix_space_changes_author", "space_changes", ["author"])


def downgrade() -> None:
    for table in (
        "space_changes",
        "space_objects",
        "space_invites",
        "space_members",
        "spaces",
        "user_profiles",
    ):
        op.drop_table(table)
