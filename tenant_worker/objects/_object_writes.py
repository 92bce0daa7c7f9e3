"""Writing one object: the plan of a Put or Delete, and the database work that carries it out.

Two ways to carry a plan out, with the same outcomes:

- PostgreSQL: one statement (``_pg_writes``) that locks the object, reads the
  idempotency key and the usage totals, checks the expected version and the
  quotas, and only then writes the object, its audit row, the usage counters
  and the key, in autocommit: one round trip, committed when it returns.
  When it refuses, it returns what it saw, and the refusal is worked out
  here, in Python, from exactly that (``version_refusal``, ``quota_refusal``).
- SQLite (and any other database): the same steps as a few Core statements
  in one transaction (SQLite has one writer at a time, so nothing races).

A Put that names files takes the second way on every database, with the
files' check (``FileCheck``) in the same transaction; on PostgreSQL a race it
loses there (a unique violation, a deadlock) is a ``WriteRace``, run again.
The one statement writes versions that name no files, so a Put without files
pays for none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tenant_worker._errors import Conflict, NotFound, WorkerError, WriteRace
from tenant_worker._policy import Quotas, TenantPolicy
from tenant_worker._records import CallContext, DeleteResult, ObjectRecord, PutResult, UserId
from tenant_worker.objects import _pg_writes
from tenant_worker.storage._db import one_row
from tenant_worker.storage._models import StoredObject
from tenant_worker.storage._retries import Replayed
from tenant_worker.storage._store import (
    FileCheck,
    FirstUse,
    KeyRef,
    ObjectRow,
    Store,
    Totals,
    first_result,
    is_live,
    no_files,
    quota_refusal,
    record_to_json,
    to_record,
    usage_slot,
)


@dataclass(frozen=True)
class StoredRow:
    """An object as the write statement saw it before writing (see ObjectRow)."""

    collection: str
    object_id: str
    data: dict[str, Any]
    schema_version: int
    version: int
    size_bytes: int
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    correlation_id: str


@dataclass(frozen=True)
class Target:
    """One object of one user, as a write names it, at the moment of the write."""

    ctx: CallContext
    owner: UserId
    collection: str
    object_id: str
    expected_version: int | None
    ref: KeyRef | None
    now: datetime
    retention: timedelta | None

    @property
    def where(self) -> str:
        return f"{self.collection}/{self.object_id}"

    @property
    def retained_after(self) -> datetime | None:
        """Objects last written before this have expired under the collection's retention."""
        return self.now - self.retention if self.retention is not None else None


@dataclass(frozen=True)
class PutPlan:
    """A validated Put: everything the write needs, worked out before the database is asked."""

    target: Target
    data: dict[str, Any]
    encoded: bytes
    schema_version: int
    expires_at: datetime | None
    quotas: Quotas
    #: The files this version names (checked ids; empty: none).
    files: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return len(self.encoded)

    def record(self, version: int, created_at: datetime) -> ObjectRecord:
        t = self.target
        return ObjectRecord(
            collection=t.collection,
            id=t.object_id,
            data=self.data,
            schema_version=self.schema_version,
            version=version,
            created_at=created_at,
            updated_at=t.now,
            expires_at=self.expires_at,
            correlation_id=t.ctx.correlation_id,
            size_bytes=self.size,
            files=self.files,
        )

    def result(self, version: int, created_at: datetime) -> PutResult:
        # A write that found no live object starts it over at version 1.
        return PutResult(self.record(version, created_at), created=version == 1)


def version_refusal(
    t: Target, prior: ObjectRow | None, live: bool, policy: TenantPolicy
) -> WorkerError | None:
    """Why a Put with ``t.expected_version`` must not replace ``prior``, or None."""
    expected = t.expected_version
    if live and prior is not None and expected == 0:
        return Conflict(
            f"{t.where} already exists at version {prior.version}; expected_version 0 creates only",
            to_record(prior, policy),
        )
    if live and prior is not None and expected is not None and prior.version != expected:
        return Conflict(
            f"{t.where} is at version {prior.version}, not {expected}", to_record(prior, policy)
        )
    if not live and expected:
        return NotFound(f"{t.where} does not exist (expected version {expected})")
    return None


def delete_refusal(
    t: Target, prior: ObjectRow | None, live: bool, policy: TenantPolicy
) -> WorkerError | None:
    """Why a Delete must not remove ``prior``, or None."""
    if prior is None or not live:
        return NotFound(f"{t.where} does not exist")
    if t.expected_version is not None and prior.version != t.expected_version:
        return Conflict(
            f"{t.where} is at version {prior.version}, not {t.expected_version}",
            to_record(prior, policy),
        )
    return None


def growth(plan: PutPlan, prior: ObjectRow | None) -> tuple[int, int]:
    """What the Put adds to the usage totals: (objects, bytes). An expired object still counts."""
    if prior is None:
        return 1, plan.size
    return 0, plan.size - prior.size_bytes


# --- PostgreSQL: one statement per attempt ---------------------------------------------------


async def put_in_one_statement(store: Store, plan: PutPlan) -> PutResult:
    t = plan.target
    async with store.statements() as conn:
        found = await one_row(conn, _pg_writes.PUT, _put_params(store, plan))
        row = _one(found)
        if row.written_version is not None:
            return plan.result(row.written_version, _utc(row.written_created_at))
        await _refuse_keyed(store, conn, t, row)
    prior = _prior(row)
    d_objects, d_bytes = growth(plan, prior)
    totals = Totals(row.tenant_objects, row.tenant_bytes, row.user_objects, row.user_bytes)
    refusal = version_refusal(t, prior, row.live, store.policy()) or quota_refusal(
        plan.quotas, totals, d_objects, d_bytes
    )
    if refusal is not None:
        raise refusal
    if row.ok:
        raise WriteRace(f"a concurrent write created {t.where} first")
    raise AssertionError(f"the write statement refused {t.where} for no reason Python knows")


async def delete_in_one_statement(store: Store, t: Target) -> DeleteResult:
    async with store.statements() as conn:
        found_row = await one_row(conn, _pg_writes.DELETE, _target_params(t))
        row = _one(found_row)
        if row.removed_version is not None:
            return DeleteResult(t.collection, t.object_id, row.removed_version)
        await _refuse_keyed(store, conn, t, row)
    refusal = delete_refusal(t, _prior(row), row.live, store.policy())
    if refusal is not None:
        raise refusal
    raise WriteRace(f"{t.where} changed while it was deleted")


_Seen = _pg_writes.PutRow | _pg_writes.DeleteRow
_RowT = TypeVar("_RowT")


def _one(row: _RowT | None) -> _RowT:
    """The row a write statement always returns."""
    if row is None:
        raise AssertionError("a write statement returned no row")
    return row


async def _refuse_keyed(store: Store, conn: AsyncConnection, t: Target, row: _Seen) -> None:
    """Raise Replayed when the statement found the call's key used before (forget a stale one)."""
    if row.first_operation is None or t.ref is None:
        return
    first = FirstUse(
        row.first_operation, row.first_request_hash, row.first_response, row.first_created_at
    )
    if first.created_at < store.key_cutoff(t.now):
        await store.forget(conn, t.ref)
        raise WriteRace("the idempotency key was past its time; it is forgotten")
    raise Replayed(first_result(t.ref, first))


def _prior(row: _Seen) -> StoredRow | None:
    if row.version is None:
        return None
    return StoredRow(
        row.collection,
        row.object_id,
        row.data if row.data is not None else {},
        row.schema_version,
        row.version,
        row.size_bytes,
        _utc(row.created_at),
        _utc(row.updated_at),
        _utc(row.expires_at) if row.expires_at is not None else None,
        row.correlation_id,
    )


def _utc(value: datetime) -> datetime:
    """A time the driver returned in the session's time zone, in UTC (as the models give it)."""
    return value.astimezone(UTC)


def _target_params(t: Target) -> dict[str, Any]:
    return {
        "owner": t.owner,
        "collection": t.collection,
        "object_id": t.object_id,
        "key": t.ref.key if t.ref is not None else "",
        "request_hash": t.ref.request_hash if t.ref is not None else "",
        "now": t.now,
        "retained_after": t.retained_after,
        "expected": t.expected_version,
        "correlation_id": t.ctx.correlation_id,
        "slot": usage_slot(t.owner),
    }


def _put_params(store: Store, plan: PutPlan) -> dict[str, Any]:
    q = plan.quotas
    # What the key remembers, less the version and creation time only the write knows.
    record = record_to_json(plan.record(0, plan.target.now))
    return {
        **_target_params(plan.target),
        "data": plan.encoded.decode(),
        "schema_version": plan.schema_version,
        "size": plan.size,
        "expires_at": plan.expires_at,
        "max_objects": q.max_objects,
        "max_bytes": q.max_bytes,
        "user_max_objects": q.per_user_max_objects,
        "user_max_bytes": q.per_user_max_bytes,
        "record": json.dumps(record),
    }


# --- Any database: a few statements in one transaction ---------------------------------------


async def put_in_transaction(
    store: Store, plan: PutPlan, check_files: FileCheck = no_files
) -> PutResult:
    t = plan.target
    async with store.core_transaction() as conn:
        prior, live = await _locked(store, conn, t)
        refusal = version_refusal(t, prior, live, store.policy())
        if refusal is not None:
            raise refusal
        await check_files(conn, t.owner, plan.files, None)
        version, created_at = (1, t.now)
        if live and prior is not None:  # a live object is replaced; anything else starts over
            version, created_at = prior.version + 1, prior.created_at
        await _write_object(conn, plan, prior is not None, version, created_at)
        await store.audit_now(
            conn,
            t.ctx,
            "object.create" if version == 1 else "object.replace",
            collection=t.collection,
            object_id=t.object_id,
            version=version,
        )
        result = plan.result(version, created_at)
        if t.ref is not None:
            first = {"object": record_to_json(result.object), "created": result.created}
            await store.remember(conn, t.ref, first)
        d_objects, d_bytes = growth(plan, prior)
        await store.charge(conn, d_objects, d_bytes, owner=t.owner)
    return result


async def delete_in_transaction(store: Store, t: Target) -> DeleteResult:
    async with store.core_transaction() as conn:
        prior, live = await _locked(store, conn, t)
        refusal = delete_refusal(t, prior, live, store.policy())
        if refusal is not None or prior is None:
            raise refusal or AssertionError("unreachable")
        await conn.execute(delete(StoredObject).where(*_key(t)))
        await store.audit_now(
            conn,
            t.ctx,
            "object.delete",
            collection=t.collection,
            object_id=t.object_id,
            version=prior.version,
        )
        result = DeleteResult(t.collection, t.object_id, prior.version)
        if t.ref is not None:
            first = {"collection": t.collection, "id": t.object_id, "version": prior.version}
            await store.remember(conn, t.ref, first)
        await store.charge(conn, -1, -prior.size_bytes, owner=t.owner)
    return result


async def _locked(store: Store, conn: AsyncConnection, t: Target) -> tuple[ObjectRow | None, bool]:
    """Replay a used key, else the object (locked where the database can) and if it is live."""
    if t.ref is not None:
        first = await store.replay(conn, t.ref)
        if first is not None:
            raise Replayed(first)
    row = (
        await conn.execute(select(StoredObject.__table__).where(*_key(t)).with_for_update())
    ).one_or_none()
    prior: ObjectRow | None = row  # type: ignore[assignment]
    return prior, prior is not None and is_live(prior, t.retention, t.now)


def _key(t: Target) -> tuple[Any, ...]:
    return (
        StoredObject.owner == t.owner,
        StoredObject.collection == t.collection,
        StoredObject.object_id == t.object_id,
    )


async def _write_object(
    conn: AsyncConnection, plan: PutPlan, present: bool, version: int, created_at: datetime
) -> None:
    t = plan.target
    values = {
        "data": plan.data,
        "schema_version": plan.schema_version,
        "version": version,
        "size_bytes": plan.size,
        "created_at": created_at,
        "updated_at": t.now,
        "expires_at": plan.expires_at,
        "correlation_id": t.ctx.correlation_id,
        "files": list(plan.files) or None,
    }
    if present:
        await conn.execute(update(StoredObject).where(*_key(t)).values(values))
    else:
        await conn.execute(
            insert(StoredObject).values(
                owner=t.owner, collection=t.collection, object_id=t.object_id, **values
            )
        )
