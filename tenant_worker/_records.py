"""Plain values the storage service returns (no I/O, no ORM here)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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
    #: The files this version names (ids, in the order given; none when saved without).
    files: tuple[str, ...] = ()


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
    #: What the erasure steps of other services reported (spaces, files).
    steps: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RevocationRecord:
    """Tokens of ``identity`` (None: of everyone) issued at or before ``revoked_before`` end."""

    id: int
    identity: str | None
    revoked_before: datetime
    recorded_at: datetime


@dataclass(frozen=True)
class Claims:
    """What the caller's token says of them, as the tenant's ``spec.identity`` names it."""

    name: str = ""
    email: str = ""
    org: str = ""


@dataclass(frozen=True)
class Author:
    """Who wrote something, as other members see them: a handle and a name."""

    member: str
    name: str


@dataclass(frozen=True)
class MemberRecord:
    member: str
    name: str
    role: str
    joined_at: datetime
    you: bool = False


@dataclass(frozen=True)
class SpaceRecord:
    id: str
    name: str
    kind: str
    #: The caller's role (empty in support listings).
    role: str
    objects: int
    bytes: int
    created_at: datetime
    members: int
    last_change: int


@dataclass(frozen=True)
class SpaceDetail:
    space: SpaceRecord
    members: tuple[MemberRecord, ...]
    pending_invites: int


@dataclass(frozen=True)
class SpaceObjectRecord:
    space: str
    object: ObjectRecord
    created_by: Author
    updated_by: Author
    space_name: str = ""


@dataclass(frozen=True)
class SpacePutResult:
    object: SpaceObjectRecord
    created: bool
    replayed: bool = False


@dataclass(frozen=True)
class SpacePage:
    objects: list[SpaceObjectRecord]
    next_cursor: str


@dataclass(frozen=True)
class ChangeRecord:
    seq: int
    collection: str
    id: str
    version: int
    action: str
    author: Author
    at: datetime


@dataclass(frozen=True)
class ChangePage:
    changes: list[ChangeRecord]
    next_cursor: str
    more: bool


@dataclass(frozen=True)
class InviteResult:
    member: MemberRecord | None
    pending: bool
