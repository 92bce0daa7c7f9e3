"""What every storage service shares: sessions, the policy, audit, quotas, replays."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.sql import Executable
from sqlalchemy.sql.elements import ColumnElement

from stowage.values import MAX_TTL_SECONDS, string_problem
from tenant_worker._errors import InvalidArgument, QuotaExceeded, Unauthenticated, WorkerError
from tenant_worker._policy import Quotas, TenantPolicy
from tenant_worker._records import CallContext, ObjectRecord, UserId
from tenant_worker.storage._db import autocommit, translated_errors
from tenant_worker.storage._models import (
    USAGE_SLOTS,
    AuditEvent,
    IdempotencyKey,
    StoredObject,
    Usage,
    UserUsage,
    utcnow,
)

OBJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
MAX_KEY_LENGTH = 200


@dataclass
class Store:
    """The session factory and the tenant's current policy, shared by the services."""

    sessions: async_sessionmaker[AsyncSession]
    policy: Callable[[], TenantPolicy]
    idempotency_ttl: timedelta = timedelta(hours=24)
    #: For single-statement reads; defaults to ``sessions``.
    read_sessions: async_sessionmaker[AsyncSession] | None = None
    engine: AsyncEngine = field(init=False)
    _single: AsyncEngine = field(init=False)

    def __post_init__(self) -> None:
        self.engine = self.sessions.kw["bind"]
        self._single = autocommit(self.engine)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @asynccontextmanager
    async def statements(self) -> AsyncIterator[AsyncConnection]:
        """A Core connection whose every statement commits on its own (PostgreSQL).

        On SQLite it is one transaction, committed on success.
        """
        async with translated_errors(), self._single.connect() as conn:
            yield conn
            await conn.commit()

    @asynccontextmanager
    async def core_transaction(self) -> AsyncIterator[AsyncConnection]:
        """One explicit transaction on a Core connection; committed on success."""
        async with translated_errors(), self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One explicit transaction; committed on success, rolled back on error."""
        async with translated_errors(), self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session for one read statement (no multi-statement consistency)."""
        sessions = self.read_sessions or self.sessions
        async with translated_errors(), sessions() as session, session.begin():
            yield session

    def key_cutoff(self, now: datetime) -> datetime:
        """Idempotency keys first used before this are forgotten."""
        return now - self.idempotency_ttl

    async def first_use(self, conn: AsyncConnection, ref: KeyRef) -> FirstUse | None:
        row = (
            await conn.execute(
                select(
                    IdempotencyKey.operation,
                    IdempotencyKey.request_hash,
                    IdempotencyKey.response,
                    IdempotencyKey.created_at,
                ).where(IdempotencyKey.owner == ref.owner, IdempotencyKey.key == ref.key)
            )
        ).one_or_none()
        return None if row is None else FirstUse(*row)

    async def forget(self, conn: AsyncConnection, ref: KeyRef) -> None:
        """Delete ref's key if it is past its time (a key younger than that stays)."""
        await conn.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.owner == ref.owner,
                IdempotencyKey.key == ref.key,
                IdempotencyKey.created_at < self.key_cutoff(utcnow()),
            )
        )

    async def replay(self, conn: AsyncConnection, ref: KeyRef) -> dict[str, Any] | None:
        """The stored first result of ref's key, or None when the key is new (or forgotten)."""
        first = await self.first_use(conn, ref)
        if first is None:
            return None
        if first.created_at < self.key_cutoff(utcnow()):
            await self.forget(conn, ref)
            return None
        return first_result(ref, first)

    async def remember(self, conn: AsyncConnection, ref: KeyRef, result: Any) -> None:
        await conn.execute(
            insert(IdempotencyKey).values(
                owner=ref.owner,
                key=ref.key,
                operation=ref.operation,
                request_hash=ref.request_hash,
                response=json.dumps(result, default=str).encode(),
                created_at=utcnow(),
            )
        )

    async def audit_now(
        self,
        conn: AsyncConnection | AsyncSession,
        ctx: CallContext,
        action: str,
        *,
        collection: str | None = None,
        object_id: str | None = None,
        version: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """The audit row of a mutation, written on a Core connection (or a session)."""
        await conn.execute(
            insert(AuditEvent).values(
                at=utcnow(),
                user_id=ctx.user_id,
                action=action,
                collection=collection,
                object_id=object_id,
                version=version,
                correlation_id=ctx.correlation_id,
                detail=detail,
            )
        )

    def audit(
        self,
        s: AsyncSession,
        ctx: CallContext,
        action: str,
        *,
        user_id: str | None = None,
        collection: str | None = None,
        object_id: str | None = None,
        version: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        s.add(
            AuditEvent(
                at=utcnow(),
                user_id=user_id if user_id is not None else ctx.user_id,
                action=action,
                collection=collection,
                object_id=object_id,
                version=version,
                correlation_id=ctx.correlation_id,
                detail=detail,
            )
        )

    async def totals(self, s: AsyncSession | AsyncConnection) -> tuple[int, int]:
        """The tenant's stored (objects, bytes), summed over the usage slots."""
        objects, used = (
            await s.execute(select(func.sum(Usage.objects), func.sum(Usage.bytes)))
        ).one()
        return int(objects or 0), int(used or 0)

    async def user_totals(self, s: AsyncSession | AsyncConnection, owner: str) -> tuple[int, int]:
        """One user's stored (objects, bytes)."""
        row = (
            await s.execute(
                select(UserUsage.objects, UserUsage.bytes).where(UserUsage.owner == owner)
            )
        ).one_or_none()
        return (int(row.objects), int(row.bytes)) if row is not None else (0, 0)

    async def charge(
        self,
        s: AsyncSession | AsyncConnection,
        d_objects: int,
        d_bytes: int,
        *,
        owner: str = "",
        enforce: bool = True,
        per_user: bool = True,
        whose: str = "this user",
    ) -> None:
        """Move the tenant's and the owner's totals; growth past a quota raises QuotaExceeded.

        The tenant's totals are spread over USAGE_SLOTS rows, chosen by owner,
        so that writers of different users do not queue on one hot row lock;
        each user's totals are one row of ``user_usage``. The checks read the
        sums first: under concurrency a quota can be overshot by at most the
        writes in flight at that moment, never by more. ``per_user=False``
        leaves the user's row alone (an erasure deletes it with the user).
        ``whose`` names the owner in a refusal (a space's writes count against
        the space's owner, who may not be the caller).
        """
        if d_objects == 0 and d_bytes == 0:
            return
        if enforce and (d_objects > 0 or d_bytes > 0):
            await self._enforce(s, d_objects, d_bytes, owner if per_user else "", whose)
        slot = usage_slot(owner)
        await s.execute(
            update(Usage)
            .where(Usage.id == slot)
            .values(objects=Usage.objects + d_objects, bytes=Usage.bytes + d_bytes),
            execution_options={"synchronize_session": False},
        )
        if owner and per_user:
            await s.execute(_add_user_usage(self.is_postgres, owner, d_objects, d_bytes))

    async def _enforce(
        self,
        s: AsyncSession | AsyncConnection,
        d_objects: int,
        d_bytes: int,
        owner: str,
        whose: str,
    ) -> None:
        q = self.policy().quotas
        objects, used = await self.totals(s)
        totals = Totals(objects, used)
        if owner and (q.per_user_max_objects is not None or q.per_user_max_bytes is not None):
            totals = Totals(objects, used, *await self.user_totals(s, owner))
        refusal = quota_refusal(q, totals, d_objects, d_bytes, whose=whose)
        if refusal is not None:
            raise refusal


class ErasureStep(Protocol):
    """What another service erases of a user, inside the erasure's transaction.

    Runs after the user's identity is locked and before it is deleted; returns
    counts for the erasure's audit row.
    """

    async def __call__(
        self, s: AsyncSession, ctx: CallContext, user: UserId
    ) -> Mapping[str, Any]: ...


def usage_slot(owner: str) -> int:
    """The usage row an owner's writes count in (spread so writers do not queue on one)."""
    return int(owner[:4], 16) % USAGE_SLOTS if owner else 0


@dataclass(frozen=True)
class Totals:
    """What the tenant, and one user of it, store before a write (None: the user's unknown)."""

    objects: int
    bytes: int
    user_objects: int | None = None
    user_bytes: int | None = None


def quota_refusal(
    q: Quotas, t: Totals, d_objects: int, d_bytes: int, *, whose: str = "this user"
) -> QuotaExceeded | None:
    """Why growing by (d_objects, d_bytes) is refused, or None when it fits every quota.

    The per-user totals are ``whose``: the caller's for a personal write, the
    space owner's for a write in a space (a space counts against its owner).
    """
    if d_objects > 0 and t.objects + d_objects > q.max_objects:
        return QuotaExceeded(
            "maxObjects",
            f"quota exceeded: the tenant stores {t.objects} objects, the limit is "
            f"{q.max_objects} (quotas.maxObjects); delete objects or raise the quota",
        )
    if d_bytes > 0 and t.bytes + d_bytes > q.max_bytes:
        return QuotaExceeded(
            "maxBytes",
            f"quota exceeded: the tenant stores {t.bytes} bytes, this write needs {d_bytes} "
            f"more, the limit is {q.max_bytes} (quotas.maxBytes); delete objects or "
            "raise the quota",
        )
    limit = q.per_user_max_objects
    mine = t.user_objects
    if d_objects > 0 and limit is not None and mine is not None and mine + d_objects > limit:
        return QuotaExceeded(
            "perUser.maxObjects",
            f"quota exceeded: {whose} stores {mine} objects, the limit per user is "
            f"{limit} (quotas.perUser.maxObjects); delete objects {whose} "
            "no longer needs (my_usage_get shows what is stored)",
        )
    limit = q.per_user_max_bytes
    mine = t.user_bytes
    if d_bytes > 0 and limit is not None and mine is not None and mine + d_bytes > limit:
        return QuotaExceeded(
            "perUser.maxBytes",
            f"quota exceeded: {whose} stores {mine} bytes, this write needs {d_bytes} "
            f"more, the limit per user is {limit} (quotas.perUser.maxBytes); "
            f"delete objects {whose} no longer needs (my_usage_get shows what is stored)",
        )
    return None


@dataclass(frozen=True)
class KeyRef:
    """An idempotency key of one owner, and the request it is being used for."""

    owner: str
    key: str
    operation: str
    request_hash: str


@dataclass(frozen=True)
class FirstUse:
    """What an idempotency key was first used for, and that request's result."""

    operation: str
    request_hash: str
    response: bytes
    created_at: datetime


def first_result(ref: KeyRef, first: FirstUse) -> dict[str, Any]:
    """The stored result when ``ref`` repeats the first request; InvalidArgument otherwise."""
    if first.operation != ref.operation or first.request_hash != ref.request_hash:
        raise InvalidArgument(
            "idempotency_key", "already used for a different request; use a new key"
        )
    result: dict[str, Any] = json.loads(first.response)
    return result


def _add_user_usage(postgres: bool, owner: str, d_objects: int, d_bytes: int) -> Executable:
    """An upsert adding to the owner's totals (PostgreSQL and SQLite speak the same clause)."""
    insert = pg_insert if postgres else sqlite_insert
    stmt = insert(UserUsage).values(owner=owner, objects=d_objects, bytes=d_bytes)
    return stmt.on_conflict_do_update(
        index_elements=[UserUsage.owner],
        set_={
            "objects": UserUsage.objects + stmt.excluded.objects,
            "bytes": UserUsage.bytes + stmt.excluded.bytes,
        },
    )


def require_user(ctx: CallContext) -> UserId:
    if not ctx.user_id:
        raise Unauthenticated("missing x-stowage-user-id metadata")
    return ctx.user_id


def check_object_id(object_id: str) -> None:
    if not OBJECT_ID.match(object_id):
        raise InvalidArgument("id", "must be 1-128 characters of A-Z a-z 0-9 . _ : - (not first)")


def check_put_arguments(
    object_id: str, idempotency_key: str, expected_version: int | None, ttl_seconds: int
) -> None:
    """The ids and numbers of a Put (personal or in a space), before its data is read."""
    if object_id:
        check_object_id(object_id)
    check_key(idempotency_key)
    if expected_version is not None and expected_version < 0:
        raise InvalidArgument("expected_version", "must be 0 (create only) or a version")
    if not 0 <= ttl_seconds <= MAX_TTL_SECONDS:
        raise InvalidArgument(
            "ttl_seconds", f"must be 0 (no TTL) up to {MAX_TTL_SECONDS} (100 years)"
        )


#: What a file id looks like (the worker makes them: 32 lower-case hex characters).
FILE_ID = re.compile(r"^[0-9a-f]{32}$")
#: The most files one object may name.
MAX_LINKED_FILES = 16


def check_file_ids(files: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The files a Put names (at most ``MAX_LINKED_FILES``, each once, each a file id)."""
    if len(files) > MAX_LINKED_FILES:
        raise InvalidArgument("files", f"at most {MAX_LINKED_FILES} files per object")
    for i, file_id in enumerate(files):
        if not FILE_ID.match(file_id):
            raise InvalidArgument(
                f"files[{i}]", "a file id is 32 lower-case hex characters (from files_list)"
            )
    if len(set(files)) != len(files):
        raise InvalidArgument("files", "name each file once")
    return tuple(files)


class FileCheck(Protocol):
    """Whether an object may name ``files``, checked in the write's own transaction
    (``tenant_worker.files`` provides it): each must exist and be the user's own file
    (``space`` None) or a file of ``space``; InvalidArgument naming the first that is not."""

    async def __call__(
        self, conn: AsyncConnection, user: str, files: tuple[str, ...], space: str | None
    ) -> None: ...


async def no_files(
    conn: AsyncConnection, user: str, files: tuple[str, ...], space: str | None
) -> None:
    """The check of a worker that stores no files: an object names none."""
    if files:
        raise InvalidArgument("files", "this app stores no files (its spec has no files section)")


def check_object_size(size: int, quotas: Quotas) -> None:
    """An object's encoded size against ``quotas.maxObjectBytes``."""
    if size > quotas.max_object_bytes:
        raise QuotaExceeded(
            "maxObjectBytes",
            f"object is {size} bytes, the limit is {quotas.max_object_bytes} bytes "
            "per object (quotas.maxObjectBytes); store less data in one object",
        )


def expiry(now: datetime, ttl_seconds: int, retention: timedelta | None) -> datetime | None:
    """The earlier of an object's TTL and its collection's retention, if either applies."""
    ttl_expiry = now + timedelta(seconds=ttl_seconds) if ttl_seconds else None
    retention_expiry = now + retention if retention else None
    return min((t for t in (ttl_expiry, retention_expiry) if t is not None), default=None)


def check_key(key: str) -> None:
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidArgument("idempotency_key", f"at most {MAX_KEY_LENGTH} characters")
    if (problem := string_problem(key)) is not None:
        raise InvalidArgument("idempotency_key", problem)


class ObjectRow(Protocol):
    """A stored object as any query returns it (an ORM instance or a Core row)."""

    @property
    def collection(self) -> str: ...
    @property
    def object_id(self) -> str: ...
    @property
    def data(self) -> dict[str, Any]: ...
    @property
    def schema_version(self) -> int: ...
    @property
    def version(self) -> int: ...
    @property
    def size_bytes(self) -> int: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...
    @property
    def expires_at(self) -> datetime | None: ...
    @property
    def correlation_id(self) -> str: ...


def effective_expiry(row: ObjectRow, retention: timedelta | None) -> datetime | None:
    """When the object stops existing: its TTL or the collection's current retention."""
    candidates = [row.expires_at] if row.expires_at is not None else []
    if retention is not None:
        candidates.append(row.updated_at + retention)
    return min(candidates) if candidates else None


def is_live(row: ObjectRow, retention: timedelta | None, now: datetime) -> bool:
    expiry = effective_expiry(row, retention)
    return expiry is None or expiry > now


def live_clause(retention: timedelta | None, now: datetime) -> ColumnElement[bool]:
    clauses = [or_(StoredObject.expires_at.is_(None), StoredObject.expires_at > now)]
    if retention is not None:
        clauses.append(StoredObject.updated_at > now - retention)
    return and_(*clauses)


def to_record(row: ObjectRow, policy: TenantPolicy) -> ObjectRecord:
    """The object as a caller sees it: upgraded to the collection's current schema."""
    data, schema_version = row.data, row.schema_version
    try:
        collection = policy.collection(row.collection)
    except WorkerError:  # a collection removed from the policy: return it as stored
        collection = None
    if collection is not None and schema_version < collection.schema_version:
        data = collection.upgrade(dict(data), schema_version)
        schema_version = collection.schema_version
    return ObjectRecord(
        collection=row.collection,
        id=row.object_id,
        data=data,
        schema_version=schema_version,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        expires_at=effective_expiry(row, policy.retention(row.collection)),
        correlation_id=row.correlation_id,
        size_bytes=row.size_bytes,
        # Rows a refused write returns carry no ``files`` column.
        files=tuple(getattr(row, "files", None) or ()),
    )


def record_to_json(r: ObjectRecord) -> dict[str, Any]:
    return {
        "collection": r.collection,
        "id": r.id,
        "data": r.data,
        "schema_version": r.schema_version,
        "version": r.version,
        "created_at": r.created_at.isoformat(),
        "updated_at": r.updated_at.isoformat(),
        "expires_at": r.expires_at.isoformat() if r.expires_at else None,
        "correlation_id": r.correlation_id,
        "size_bytes": r.size_bytes,
        **({"files": list(r.files)} if r.files else {}),
    }


def record_from_json(d: dict[str, Any]) -> ObjectRecord:
    return ObjectRecord(
        collection=d["collection"],
        id=d["id"],
        data=d["data"],
        schema_version=d["schema_version"],
        version=d["version"],
        created_at=datetime.fromisoformat(d["created_at"]),
        updated_at=datetime.fromisoformat(d["updated_at"]),
        expires_at=datetime.fromisoformat(d["expires_at"]) if d["expires_at"] else None,
        correlation_id=d["correlation_id"],
        size_bytes=d["size_bytes"],
        files=tuple(d.get("files", ())),
    )
