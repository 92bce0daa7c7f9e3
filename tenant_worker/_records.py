"""Plain values the storage service returns (no I/O, no ORM here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NewType

UserId = NewType("UserId", str)


@dataclass(frozen=True)
class CallContext:
    """Who is calling and under which correlation id."""

    correlation_id: str
    user_id: UserId | None = None


@dataclass(frozen=True)
class ObjectRecord:
    collection: str
    id: str
    data: dict[str, Any]
    schema_version: int
    version: int
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    correlation_id: str
    size_bytes: int


@dataclass(frozen=True)
class PutResult:
    object: ObjectRecord
    created: bool
    replayed: bool = False


@dataclass(frozen=True)
class DeleteResult:
    collection: str
    id: str
    version: int
    replayed: bool = False


@dataclass(frozen=True)
class PreferencesRecord:
    data: dict[str, Any]
    version: int
    updated_at: datetime | None
    replayed: bool = False


@dataclass(frozen=True)
class IdentityRecord:
    issuer: str
    subject: str
    created_at: datetime


@dataclass(frozen=True)
class Page:
    objects: list[ObjectRecord]
    next_cursor: str


@dataclass(frozen=True)
class UsageRecord:
    """What one user stores, by collection, and the quotas that apply to them."""

    objects: int
    bytes: int
    by_collection: tuple[tuple[str, int, int], ...]
    max_objects: int | None
    max_bytes: int | None
    max_object_bytes: int


@dataclass(frozen=True)
class EraseResult:
    objects_deleted: int
    preferences_deleted: bool
    identities_deleted: int


@dataclass(frozen=True)
class RevocationRecord:
    """Tokens of ``identity`` (None: of everyone) issued at or before ``revoked_before`` end."""

    id: int
    identity: str | None
    revoked_before: datetime
    recorded_at: datetime
