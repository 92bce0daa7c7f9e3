"""SQLAlchemy models of one tenant's database (the schema lives in migrations)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Always timezone-aware UTC in Python, whatever the backend stores."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JsonDocument = JSON().with_variant(JSONB(), "postgresql")
AutoId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JsonDocument}


class User(Base):
    """An identity link: (issuer, subject) → internal user id."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("issuer", "subject", name="uq_users_issuer_subject"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    issuer: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class StoredObject(Base):
    __tablename__ = "objects"
    __table_args__ = (
        Index("ix_objects_expires_at", "expires_at"),
        Index("ix_objects_collection_updated_at", "collection", "updated_at"),
        Index("ix_objects_collection_schema_version", "collection", "schema_version"),
    )

    owner: Mapped[str] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    collection: Mapped[str] = mapped_column(String(63), primary_key=True)
    object_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    data: Mapped[dict[str, Any]]
    schema_version: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(BigInteger)
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    correlation_id: Mapped[str] = mapped_column(String(128))
    #: The files this version names (a JSON array of file ids), or NULL: none (migration
    #: 0009). NULL costs a save or a read without files nothing.
    files: Mapped[list[str] | None] = mapped_column(JsonDocument)


class Preference(Base):
    __tablename__ = "preferences"

    owner: Mapped[str] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    data: Mapped[dict[str, Any]]
    version: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]
    correlation_id: Mapped[str] = mapped_column(String(128))


class IdempotencyKey(Base):
    """The first result of a mutation, returned again when the key is replayed."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)

    owner: Mapped[str] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    operation: Mapped[str] = mapped_column(String(32))
    request_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]


class AuditEvent(Base):
    """That a mutation happened: never the payload. Survives erasure."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_user_id", "user_id"),)

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    user_id: Mapped[str | None] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(32))
    collection: Mapped[str | None] = mapped_column(String(63))
    object_id: Mapped[str | None] = mapped_column(String(128))
    version: Mapped[int | None] = mapped_column(BigInteger)
    correlation_id: Mapped[str] = mapped_column(String(128))
    detail: Mapped[dict[str, Any] | None]


class Key(Base):
    """Secrets of this tenant database, made by its migrations (e.g. the audit pseudonym key)."""

    __tablename__ = "keys"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret: Mapped[bytes] = mapped_column(LargeBinary)


#: The key that turns an erased user's object ids into pseudonyms in the audit trail.
AUDIT_KEY = "audit-pseudonyms"

#: Rows the usage totals are spread over (see Store.charge).
USAGE_SLOTS = 16


class UserUsage(Base):
    """One user's running totals, checked against the per-user quotas; gone with the user."""

    __tablename__ = "user_usage"

    owner: Mapped[str] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    objects: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger)


class Usage(Base):
    """The tenant's running totals (summed over slots), checked against its quotas."""

    __tablename__ = "usage"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    objects: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger)


class AccessRevocation(Base):
    """Tokens of an identity (or of everyone) issued at or before a time are refused.

    Append-only: ``id`` orders the revocations, so a gateway catches up by asking
    for those after the last id it saw. ``identity`` is
    :func:`stowage.wire.identity_digest` of (issuer, subject), never the identity
    itself, so an erased user leaves nothing identifying here; NULL means every
    identity of the tenant.
    """

    __tablename__ = "access_revocations"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    identity: Mapped[str | None] = mapped_column(String(64))
    revoked_before: Mapped[datetime]
    recorded_at: Mapped[datetime]
    #: "user" (their own, from a tool call) or "operator" (``stowage access revoke``).
    requested_by: Mapped[str] = mapped_column(String(16))
    correlation_id: Mapped[str] = mapped_column(String(128))


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- Shared spaces (migration 0005) ----------------------------------------------------------


class UserProfile(Base):
    """What a user's token said about them at their last sign-in; gone with the user.

    ``display_name`` only when the tenant names a name claim; the email and the
    organisation only as digests (:func:`stowage.wire.claim_digest`), enough to
    match an invitation or an organisation space, never readable.
    """

    __tablename__ = "user_profiles"
    __table_args__ = (Index("ix_user_profiles_email_digest", "email_digest"),)

    user_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    display_name: Mapped[str | None] = mapped_column(Text)
    email_digest: Mapped[str | None] = mapped_column(String(64))
    org_digest: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime]


class Space(Base):
    """A space: members share the objects of the tenant's shared collections in it.

    ``owner`` is the member whose per-user quota the space counts against;
    ``seq`` is the number of its last change (the change feed's cursor), and
    ``objects``/``bytes`` its size. Every write in a space locks this row first,
    so its changes are numbered in the order they commit.
    """

    __tablename__ = "spaces"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    #: "space" (created by a user) or "org" (one per organisation, joined without invitation).
    kind: Mapped[str] = mapped_column(String(8))
    org_digest: Mapped[str | None] = mapped_column(String(64), unique=True)
    owner: Mapped[str] = mapped_column(String(32), ForeignKey("users.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    objects: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]


class SpaceMember(Base):
    __tablename__ = "space_members"
    __table_args__ = (Index("ix_space_members_user_id", "user_id"),)

    space_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("spaces.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    #: owner, editor or viewer.
    role: Mapped[str] = mapped_column(String(8))
    joined_at: Mapped[datetime]


class SpaceInvite(Base):
    """An invitation to a verified email, waiting until someone with that email signs in."""

    __tablename__ = "space_invites"
    __table_args__ = (Index("ix_space_invites_email_digest", "email_digest"),)

    space_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("spaces.id", ondelete="CASCADE"), primary_key=True
    )
    email_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(8))
    invited_by: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime]


class SpaceObject(Base):
    """An object of a shared collection, in a space.

    ``created_by`` / ``updated_by`` are internal user ids, or after the author's
    erasure under ``spaces.erasure: pseudonymise`` a pseudonym (``~`` + hex).
    """

    __tablename__ = "space_objects"
    __table_args__ = (
        Index("ix_space_objects_expires_at", "expires_at"),
        Index("ix_space_objects_collection_updated_at", "collection", "updated_at"),
        Index("ix_space_objects_created_by", "created_by"),
        Index("ix_space_objects_updated_by", "updated_by"),
    )

    space_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("spaces.id", ondelete="CASCADE"), primary_key=True
    )
    collection: Mapped[str] = mapped_column(String(63), primary_key=True)
    object_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    data: Mapped[dict[str, Any]]
    schema_version: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(BigInteger)
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    correlation_id: Mapped[str] = mapped_column(String(128))
    created_by: Mapped[str] = mapped_column(String(41))
    updated_by: Mapped[str] = mapped_column(String(41))
    #: The files of the space this version names (as ``objects.files``; migration 0009).
    files: Mapped[list[str] | None] = mapped_column(JsonDocument)


class SpaceChange(Base):
    """One change of a space, numbered by the space's ``seq``: the change feed."""

    __tablename__ = "space_changes"
    __table_args__ = (Index("ix_space_changes_author", "author"),)

    space_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("spaces.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    collection: Mapped[str] = mapped_column(String(63))
    object_id: Mapped[str] = mapped_column(String(128))
    #: The version written, or the version deleted.
    version: Mapped[int] = mapped_column(BigInteger)
    #: "put" or "delete" ("expire" when the purge removed it).
    action: Mapped[str] = mapped_column(String(8))
    author: Mapped[str] = mapped_column(String(41))
    at: Mapped[datetime]
    correlation_id: Mapped[str] = mapped_column(String(128))


# --- Files (migration 0006) -------------------------------------------------------------------


class StoredFile(Base):
    """A file's metadata; its bytes are the ``file_chunks`` of its current ``content``.

    ``version`` counts uploads (0: created, no bytes yet); each upload writes a
    new ``content`` (a fresh id) and, when it commits, points the file at it and
    deletes the chunks of the one before, so a reader of one content never sees
    another's bytes.
    """

    __tablename__ = "files"
    __table_args__ = (
        Index("ix_files_owner", "owner"),
        Index("ix_files_expires_at", "expires_at"),
        Index("ix_files_updated_at", "updated_at"),
        Index("ix_files_space_id", "space_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(32), ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    #: What the uploader said the file is.
    declared_type: Mapped[str] = mapped_column(String(255))
    #: What its first bytes show (None before the first upload).
    sniffed_type: Mapped[str | None] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(BigInteger)
    content: Mapped[str | None] = mapped_column(String(32))
    chunk_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    correlation_id: Mapped[str] = mapped_column(String(128))
    #: Where the current content's bytes are: ``database`` (chunks) or ``bucket``
    #: (one object in the Region's object store; migration 0007).
    storage: Mapped[str] = mapped_column(String(16), server_default="database")
    #: The shared space the file lives in (None: the owner's own file; migration 0008).
    #: A space file is read and written by the space's members by their role; it counts
    #: against the space's size and its owner's quota, not against ``owner``'s.
    space_id: Mapped[str | None] = mapped_column(String(32))
    #: Who created it and who uploaded its current version, in a space (as on
    #: ``space_objects``: a user id, or an erased author's pseudonym); None outside one.
    created_by: Mapped[str | None] = mapped_column(String(41))
    updated_by: Mapped[str | None] = mapped_column(String(41))


#: ``files.storage`` of a file whose bytes are one object of the Region's bucket.
IN_BUCKET_STORAGE = "bucket"
#: ``file_object_deletions.reason`` of an object nothing points at any more.
ORPHANED_OBJECT = "delete"


def object_name(content: str) -> str:
    """The object holding one content (one version of one file), under the tenant's prefix.

    The database keeps names without the prefix, so they stay right wherever the
    prefix is.
    """
    return f"files/{content}"


class FileObjectDeletion(Base):
    """An object of the Region's object store to delete once ``due_at`` has passed.

    Written in the transaction that orphans the object (delete, purge, erasure,
    a newer version), or before an upload streams into it (due after the upload
    could still be running; removed when the upload commits), so that a failed
    delete is retried and an interrupted upload leaves nothing behind.
    """

    __tablename__ = "file_object_deletions"
    __table_args__ = (Index("ix_file_object_deletions_due_at", "due_at"),)

    key: Mapped[str] = mapped_column(String(1024), primary_key=True)
    due_at: Mapped[datetime]
    #: ``upload`` (an upload's object, maybe a multipart upload to abort) or ``delete``.
    reason: Mapped[str] = mapped_column(String(16))


class FileChunk(Base):
    """One chunk of a file's content, in order (``seq`` from 0); all full but the last."""

    __tablename__ = "file_chunks"
    __table_args__ = (Index("ix_file_chunks_file_id", "file_id"),)

    content: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_id: Mapped[str] = mapped_column(String(32), ForeignKey("files.id", ondelete="CASCADE"))
    data: Mapped[bytes] = mapped_column(LargeBinary)
