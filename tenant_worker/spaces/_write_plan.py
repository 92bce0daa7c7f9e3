"""A write in a space worked out before the database is asked, and what it gives back.

``Write`` is a validated Put or Delete; the rest turn it into the parameters of
the PostgreSQL statements (``_pg_space_writes``) and turn what they saw into
records and refusals (a conflict names who changed the object, and when). No
I/O here.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.sql.elements import ColumnElement

from tenant_worker._errors import (
    Conflict,
    InvalidArgument,
)
from tenant_worker._policy import Collection, TenantPolicy
from tenant_worker._records import (
    Author,
    CallContext,
    ObjectRecord,
    SpaceObjectRecord,
    SpacePutResult,
    UserId,
)
from tenant_worker.spaces._access import (
    Handles,
)
from tenant_worker.spaces._pg_space_writes import SeenRow
from tenant_worker.spaces._roles import Role, at_least
from tenant_worker.storage._models import SpaceObject
from tenant_worker.storage._store import (
    KeyRef,
    record_from_json,
    record_to_json,
    to_record,
    usage_slot,
)

#: Whose per-user quota a write in a space counts against, as a refusal names it.
SPACE_OWNER = "the space's owner"
OBJECTS = SpaceObject.__table__


def new_object_id() -> str:
    return f"{time.time_ns() // 1000:014x}{secrets.token_hex(5)}"


def shared_collection(policy: TenantPolicy, name: str) -> Collection:
    coll = policy.collection(name)
    if not coll.spec.shared:
        raise InvalidArgument(
            "collection", f"{name} is not a shared collection; its objects are personal"
        )
    return coll


@dataclass(frozen=True)
class Write:
    """A validated write in a space: everything worked out before the database is asked."""

    ctx: CallContext
    user: UserId
    space: str
    collection: str
    object_id: str
    expected_version: int | None
    ref: KeyRef | None
    now: datetime
    retention: timedelta | None
    data: dict[str, Any] | None = None
    encoded: bytes = b""
    schema_version: int = 0
    expires_at: datetime | None = None
    #: The files of the space this version names (checked ids; empty: none).
    files: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        return f"{self.collection}/{self.object_id} in space {self.space}"

    @property
    def retained_after(self) -> datetime | None:
        """Objects last written before this have expired under the collection's retention."""
        return self.now - self.retention if self.retention is not None else None

    def record(self, version: int, created_at: datetime) -> ObjectRecord:
        """The object this Put writes, at ``version`` (the statement knows it, and
        ``created_at``, once it has written)."""
        return ObjectRecord(
            collection=self.collection,
            id=self.object_id,
            data=self.data or {},
            schema_version=self.schema_version,
            version=version,
            created_at=created_at,
            updated_at=self.now,
            expires_at=self.expires_at,
            correlation_id=self.ctx.correlation_id,
            size_bytes=len(self.encoded),
            files=self.files,
        )

    def key(self) -> tuple[ColumnElement[bool], ...]:
        return (
            OBJECTS.c.space_id == self.space,
            OBJECTS.c.collection == self.collection,
            OBJECTS.c.object_id == self.object_id,
        )


def conflict_of(w: Write, current: SpaceObjectRecord) -> Conflict:
    """A stale expected version: the current object, who changed it and when."""
    who = current.updated_by.name
    when = current.object.updated_at.isoformat(timespec="seconds")
    expected = "0 (create only)" if w.expected_version == 0 else f"version {w.expected_version}"
    return Conflict(
        f"{who} changed {w.collection}/{w.object_id} at {when}: it is now at version "
        f"{current.object.version}, not {expected}. Show the user the current content before "
        "saving again.",
        current,
    )


def found_object(
    w: Write, row: SeenRow, policy: TenantPolicy, handle_key: bytes
) -> SpaceObjectRecord:
    """The object as a write statement found it, with its authors (for a conflict)."""
    return SpaceObjectRecord(
        space=w.space,
        object=to_record(_PriorRow(w, row), policy),
        created_by=Handles.author(handle_key, row.found_created_by, row.found_created_by_name),
        updated_by=Handles.author(handle_key, row.found_updated_by, row.found_updated_by_name),
    )


def utc(value: datetime) -> datetime:
    """A time the driver returned in the session's time zone, in UTC (as the models give it)."""
    return value.astimezone(UTC)


@dataclass(frozen=True)
class _PriorRow:
    """The object as the write statement found it (an ``ObjectRow`` for ``to_record``)."""

    w: Write
    row: SeenRow

    @property
    def collection(self) -> str:
        return self.w.collection

    @property
    def object_id(self) -> str:
        return self.w.object_id

    @property
    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = self.row.data
        return data

    @property
    def schema_version(self) -> int:
        return int(self.row.schema_version)

    @property
    def version(self) -> int:
        return int(self.row.version)

    @property
    def size_bytes(self) -> int:
        return int(self.row.size_bytes)

    @property
    def created_at(self) -> datetime:
        return utc(self.row.created_at)

    @property
    def updated_at(self) -> datetime:
        return utc(self.row.updated_at)

    @property
    def expires_at(self) -> datetime | None:
        expires: datetime | None = self.row.expires_at
        return utc(expires) if expires is not None else None

    @property
    def correlation_id(self) -> str:
        return str(self.row.correlation_id)


def target_params(w: Write, policy: TenantPolicy) -> dict[str, Any]:
    """The parameters ``_pg_space_writes.PUT`` and ``DELETE`` share."""
    return {
        "space": w.space,
        "user_id": w.user,
        "writers": [r.value for r in at_least(Role.EDITOR)],
        "collection": w.collection,
        "object_id": w.object_id,
        "operation": w.ref.operation if w.ref is not None else "",
        "key": w.ref.key if w.ref is not None else "",
        "request_hash": w.ref.request_hash if w.ref is not None else "",
        "now": w.now,
        "retained_after": w.retained_after,
        "expected": w.expected_version,
        "correlation_id": w.ctx.correlation_id,
        # The tenant's totals are summed over the slots: any slot counts the same. The
        # space's own spreads spaces over them; its writers queue on the space's lock anyway.
        "slot": usage_slot(w.space),
        "detail": json.dumps({"space": w.space}),
        "names": policy.spec.identity.name_claim is not None,
    }


def put_params(w: Write, policy: TenantPolicy, handle_key: bytes) -> dict[str, Any]:
    """The parameters of ``_pg_space_writes.PUT``: the caller's handle, the database key
    for another member's (see ``_pg_space_writes``), the object, the quotas."""
    q = policy.quotas
    # What the key remembers, less the version and creation time only the write knows.
    record = record_to_json(w.record(0, w.now))
    inner, outer = Handles.pads(handle_key)
    return {
        **target_params(w, policy),
        "me": Handles.of(handle_key, w.user),
        "ipad": inner,
        "opad": outer,
        "data": w.encoded.decode(),
        "schema_version": w.schema_version,
        "size": len(w.encoded),
        "expires_at": w.expires_at,
        "max_objects": q.max_objects,
        "max_bytes": q.max_bytes,
        "user_max_objects": q.per_user_max_objects,
        "user_max_bytes": q.per_user_max_bytes,
        "record": json.dumps(record),
    }


def put_json(r: SpacePutResult) -> dict[str, Any]:
    o = r.object
    return {
        "space": o.space,
        "object": record_to_json(o.object),
        "created_by": [o.created_by.member, o.created_by.name],
        "updated_by": [o.updated_by.member, o.updated_by.name],
        "created": r.created,
    }


def replayed_put(first: dict[str, Any]) -> SpacePutResult:
    record = SpaceObjectRecord(
        space=first["space"],
        object=record_from_json(first["object"]),
        created_by=Author(*first["created_by"]),
        updated_by=Author(*first["updated_by"]),
    )
    return SpacePutResult(record, first["created"], replayed=True)
