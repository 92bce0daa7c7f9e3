"""Objects of shared collections in a space: put, get, list, delete, the change feed, export.

A write is one transaction: the space and the caller's membership are locked
first (``_access.role_in``), so the role is checked against the membership as
it stands when the data is written, and the space's changes are numbered in
commit order. Then the idempotency key, the object and its expected version,
the write, the change row, the audit row and the quotas of the space's owner.
On PostgreSQL a Put or a Delete is all of that in one statement
(``_pg_space_writes``), one round trip in autocommit; on SQLite a few
statements in one transaction (``_put``, ``_delete``). A get is one statement
on either: the caller's membership joined to the object and its authors' names.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, insert, or_, select, tuple_, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from stowage.values import MAX_TTL_SECONDS
from tenant_worker._errors import (
    Conflict,
    InvalidArgument,
    NotFound,
    QuotaExceeded,
    WorkerError,
    WriteRace,
)
from tenant_worker._policy import Collection, TenantPolicy
from tenant_worker._records import (
    Author,
    CallContext,
    ChangePage,
    ChangeRecord,
    DeleteResult,
    ObjectRecord,
    SpaceObjectRecord,
    SpacePage,
    SpacePutResult,
    UserId,
)
from tenant_worker.spaces import _cursor, _pg_space_writes
from tenant_worker.spaces._access import (
    EXPIRY_AUTHOR,
    FORMER_MEMBER,
    HANDLE_CONTEXT,
    HANDLE_HEX,
    HANDLE_PREFIX,
    MEMBERS,
    PSEUDONYM_PREFIX,
    PSEUDONYM_SHOWN,
    SPACE_ID,
    Conn,
    Handles,
    SpaceRow,
    is_member,
    no_such_space,
    role_in,
)
from tenant_worker.spaces._roles import Role, at_least, require
from tenant_worker.storage._json import check_value, dumps, loads_object, request_hash
from tenant_worker.storage._models import Space, SpaceChange, SpaceObject, UserProfile, utcnow
from tenant_worker.storage._retries import Replayed, write_once
from tenant_worker.storage._store import (
    FirstUse,
    KeyRef,
    Store,
    Totals,
    check_key,
    check_object_id,
    first_result,
    is_live,
    quota_refusal,
    record_from_json,
    record_to_json,
    require_user,
    to_record,
    usage_slot,
)

#: Whose per-user quota a write in a space counts against, as a refusal names it.
SPACE_OWNER = "the space's owner"
OBJECTS = SpaceObject.__table__
CHANGES = SpaceChange.__table__
_CREATOR = UserProfile.__table__.alias("creator")
_EDITOR = UserProfile.__table__.alias("editor")
#: One object of a space, only if the caller is a member of it: no row for a
#: non-member (or a space that does not exist), the role alone when the object
#: is missing. The authors' display names come along. Built once, so its
#: compiled form is cached.
_GET = (
    select(
        MEMBERS.c.role,
        OBJECTS,
        _CREATOR.c.display_name.label("created_by_name"),
        _EDITOR.c.display_name.label("updated_by_name"),
    )
    .select_from(
        MEMBERS.outerjoin(
            OBJECTS,
            and_(
                OBJECTS.c.space_id == MEMBERS.c.space_id,
                OBJECTS.c.collection == bindparam("collection"),
                OBJECTS.c.object_id == bindparam("object_id"),
            ),
        )
        .outerjoin(_CREATOR, _CREATOR.c.user_id == OBJECTS.c.created_by)
        .outerjoin(_EDITOR, _EDITOR.c.user_id == OBJECTS.c.updated_by)
    )
    .where(MEMBERS.c.space_id == bindparam("space"), MEMBERS.c.user_id == bindparam("user"))
)
DEFAULT_FEED_PAGE = 100
MAX_FEED_PAGE = 1000
_EXPORT_BATCH = 200


def _new_object_id() -> str:
    return f"{time.time_ns() // 1000:014x}{secrets.token_hex(5)}"


def _live(retention: timedelta | None, now: datetime) -> ColumnElement[bool]:
    clauses = [or_(OBJECTS.c.expires_at.is_(None), OBJECTS.c.expires_at > now)]
    if retention is not None:
        clauses.append(OBJECTS.c.updated_at > now - retention)
    return and_(*clauses)


def shared_collection(policy: TenantPolicy, name: str) -> Collection:
    coll = policy.collection(name)
    if not coll.spec.shared:
        raise InvalidArgument(
            "collection", f"{name} is not a shared collection; its objects are personal"
        )
    return coll


@dataclass(frozen=True)
class _Write:
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
        )

    def key(self) -> tuple[ColumnElement[bool], ...]:
        return (
            OBJECTS.c.space_id == self.space,
            OBJECTS.c.collection == self.collection,
            OBJECTS.c.object_id == self.object_id,
        )


class SpaceObjects:
    def __init__(
        self, store: Store, handles: Handles, default_page_size: int = 20, max_page_size: int = 100
    ) -> None:
        self.store = store
        self.handles = handles
        self.default_page_size = default_page_size
        self.max_page_size = max_page_size

    # --- records ------------------------------------------------------------------------

    async def _records(
        self, conn: Conn, rows: list[Any], space_names: dict[str, str] | None = None
    ) -> list[SpaceObjectRecord]:
        policy = self.store.policy()
        authors = await self.handles.authors(
            conn, self.store, [r.created_by for r in rows] + [r.updated_by for r in rows]
        )
        return [
            SpaceObjectRecord(
                space=r.space_id,
                object=to_record(r, policy),
                created_by=authors[r.created_by],
                updated_by=authors[r.updated_by],
                space_name=(space_names or {}).get(r.space_id, ""),
            )
            for r in rows
        ]

    # --- writes -------------------------------------------------------------------------

    async def put(
        self,
        ctx: CallContext,
        space: str,
        collection: str,
        object_id: str,
        data_json: bytes,
        expected_version: int | None = None,
        idempotency_key: str = "",
        ttl_seconds: int = 0,
    ) -> SpacePutResult:
        w = self._plan_put(
            ctx,
            space,
            collection,
            object_id,
            data_json,
            expected_version,
            idempotency_key,
            ttl_seconds,
        )
        put = self._put_in_one_statement if self.store.is_postgres else self._put
        return await write_once(self.store, w.ref, lambda: put(w), _replayed_put)

    def _plan_put(
        self,
        ctx: CallContext,
        space: str,
        collection: str,
        object_id: str,
        data_json: bytes,
        expected_version: int | None,
        idempotency_key: str,
        ttl_seconds: int,
    ) -> _Write:
        user = require_user(ctx)
        policy = self.store.policy()
        coll = shared_collection(policy, collection)
        if object_id:
            check_object_id(object_id)
        check_key(idempotency_key)
        if expected_version is not None and expected_version < 0:
            raise InvalidArgument("expected_version", "must be 0 (create only) or a version")
        if not 0 <= ttl_seconds <= MAX_TTL_SECONDS:
            raise InvalidArgument(
                "ttl_seconds", f"must be 0 (no TTL) up to {MAX_TTL_SECONDS} (100 years)"
            )
        data = loads_object(data_json, "data_json")
        check_value(data, "data")
        coll.validate(data)
        encoded = dumps(data)
        limit = policy.quotas.max_object_bytes
        if len(encoded) > limit:
            raise QuotaExceeded(
                "maxObjectBytes",
                f"object is {len(encoded)} bytes, the limit is {limit} bytes per object "
                "(quotas.maxObjectBytes); store less data in one object",
            )
        rhash = request_hash(
            "space.put", space, collection, object_id, encoded, expected_version, ttl_seconds
        )
        now = utcnow()
        retention = policy.retention(collection)
        ttl_expiry = now + timedelta(seconds=ttl_seconds) if ttl_seconds else None
        retention_expiry = now + retention if retention else None
        expires = [t for t in (ttl_expiry, retention_expiry) if t is not None]
        return _Write(
            ctx=ctx,
            user=user,
            space=space,
            collection=collection,
            object_id=object_id or _new_object_id(),
            expected_version=expected_version,
            ref=KeyRef(user, idempotency_key, "space.put", rhash) if idempotency_key else None,
            now=now,
            retention=retention,
            data=data,
            encoded=encoded,
            schema_version=coll.schema_version,
            expires_at=min(expires) if expires else None,
        )

    async def _locked(
        self, conn: AsyncConnection, w: _Write, doing: str
    ) -> tuple[SpaceRow, Any, bool]:
        """The space (locked, the caller's role checked), a used key replayed, the object."""
        space, role = await role_in(conn, w.space, w.user, lock=True)
        require(role, Role.EDITOR, doing, w.space)
        if w.ref is not None and (first := await self.store.replay(conn, w.ref)) is not None:
            raise Replayed(first)
        prior = (
            await conn.execute(select(OBJECTS).where(*w.key()).with_for_update())
        ).one_or_none()
        return space, prior, prior is not None and is_live(prior, w.retention, w.now)

    # ``prior`` below is the object row the attempt locked, when it exists.

    async def _conflict(self, conn: AsyncConnection, w: _Write, prior: Any) -> Conflict:
        """A stale expected version: the current object, who changed it and when."""
        (current,) = await self._records(conn, [prior])
        return _conflict(w, current)

    async def _put_in_one_statement(self, w: _Write) -> SpacePutResult:
        """A Put on PostgreSQL: ``_pg_space_writes.PUT``, then the refusal, if any, from
        what it saw, in the order ``_put`` checks: membership, role, key, version, quotas."""
        if not SPACE_ID.match(w.space):
            raise no_such_space(w.space)
        async with self.store.statements() as conn:
            params = _put_params(w, self.store.policy(), await self.handles.key(conn))
            row = (await conn.execute(_pg_space_writes.PUT, params)).one()
            if row.role is None:
                raise no_such_space(w.space)
            require(Role(row.role), Role.EDITOR, "saving", w.space)
            if row.written_version is not None:
                record = SpaceObjectRecord(
                    space=w.space,
                    object=w.record(row.written_version, _utc(row.written_created_at)),
                    created_by=Author(*row.written_created_by),
                    updated_by=Author(*row.me),
                )
                return SpacePutResult(record, created=row.written_version == 1)
            await self._refuse_keyed(conn, w, row)
        raise self._put_refusal(w, row)

    async def _refuse_keyed(self, conn: AsyncConnection, w: _Write, row: Row[Any]) -> None:
        """Replayed when the statement found the call's key used before (a stale one is
        forgotten, and the write runs again); as a personal Put does."""
        if row.first_operation is None or w.ref is None:
            return
        first = FirstUse(
            row.first_operation, row.first_request_hash, row.first_response, row.first_created_at
        )
        if first.created_at < self.store.key_cutoff(w.now):
            await self.store.forget(conn, w.ref)
            raise WriteRace("the idempotency key was past its time; it is forgotten")
        raise Replayed(first_result(w.ref, first))

    def _put_refusal(self, w: _Write, row: Row[Any]) -> WorkerError:
        """Why the statement wrote nothing: a stale version, a quota, or a lost race."""
        policy = self.store.policy()
        expected = w.expected_version
        stale = row.version is not None and row.live and expected is not None
        if stale and (expected == 0 or row.version != expected):
            return _conflict(w, _current(w, row, policy))
        if not row.live and expected:
            return NotFound(f"{w.where} does not exist (expected version {expected})")
        d_objects = 1 if row.version is None else 0
        d_bytes = len(w.encoded) - (row.size_bytes or 0)
        totals = Totals(row.tenant_objects, row.tenant_bytes, row.user_objects, row.user_bytes)
        refusal = quota_refusal(policy.quotas, totals, d_objects, d_bytes, whose=SPACE_OWNER)
        if refusal is not None:
            return refusal
        if row.ok:
            return WriteRace(f"a concurrent write created {w.where} first")
        raise AssertionError(f"the write statement refused {w.where} for no reason Python knows")

    async def _put(self, w: _Write) -> SpacePutResult:
        async with self.store.core_transaction() as conn:
            space, prior, live = await self._locked(conn, w, "saving")
            expected = w.expected_version
            stale = live and prior is not None and expected is not None
            if stale and (expected == 0 or prior.version != expected):
                raise await self._conflict(conn, w, prior)
            if not live and expected:
                raise NotFound(f"{w.where} does not exist (expected version {expected})")
            version, created_at, created_by = 1, w.now, w.user
            if live and prior is not None:
                version, created_at, created_by = (
                    prior.version + 1,
                    prior.created_at,
                    prior.created_by,
                )
            values = {
                "data": w.data,
                "schema_version": w.schema_version,
                "version": version,
                "size_bytes": len(w.encoded),
                "created_at": created_at,
                "updated_at": w.now,
                "expires_at": w.expires_at,
                "correlation_id": w.ctx.correlation_id,
                "created_by": created_by,
                "updated_by": w.user,
            }
            if prior is not None:
                await conn.execute(update(SpaceObject).where(*w.key()).values(values))
            else:
                await conn.execute(
                    insert(SpaceObject).values(
                        space_id=w.space, collection=w.collection, object_id=w.object_id, **values
                    )
                )
            d_objects = 0 if prior is not None else 1
            d_bytes = len(w.encoded) - (prior.size_bytes if prior is not None else 0)
            await self._changed(conn, w, space, "put", version, d_objects, d_bytes)
            await self.store.audit_now(
                conn,
                w.ctx,
                "space.object.create" if version == 1 else "space.object.replace",
                collection=w.collection,
                object_id=w.object_id,
                version=version,
                detail={"space": w.space},
            )
            row = (await conn.execute(select(OBJECTS).where(*w.key()))).one()
            (record,) = await self._records(conn, [row])
            result = SpacePutResult(record, created=version == 1)
            if w.ref is not None:
                await self.store.remember(conn, w.ref, _put_json(result))
        return result

    async def _changed(
        self,
        conn: AsyncConnection,
        w: _Write,
        space: SpaceRow,
        action: str,
        version: int,
        d_objects: int,
        d_bytes: int,
    ) -> None:
        """The change's number, its feed row, the space's size and its owner's quota."""
        seq = space.seq + 1
        await conn.execute(
            update(Space)
            .where(Space.id == space.id)
            .values(seq=seq, objects=Space.objects + d_objects, bytes=Space.bytes + d_bytes)
        )
        await conn.execute(
            insert(SpaceChange).values(
                space_id=space.id,
                seq=seq,
                collection=w.collection,
                object_id=w.object_id,
                version=version,
                action=action,
                author=w.user,
                at=w.now,
                correlation_id=w.ctx.correlation_id,
            )
        )
        await self.store.charge(conn, d_objects, d_bytes, owner=space.owner, whose=SPACE_OWNER)

    async def delete(
        self,
        ctx: CallContext,
        space: str,
        collection: str,
        object_id: str,
        expected_version: int | None = None,
        idempotency_key: str = "",
    ) -> DeleteResult:
        user = require_user(ctx)
        policy = self.store.policy()
        shared_collection(policy, collection)
        check_object_id(object_id)
        check_key(idempotency_key)
        rhash = request_hash("space.delete", space, collection, object_id, expected_version)
        w = _Write(
            ctx=ctx,
            user=user,
            space=space,
            collection=collection,
            object_id=object_id,
            expected_version=expected_version,
            ref=KeyRef(user, idempotency_key, "space.delete", rhash) if idempotency_key else None,
            now=utcnow(),
            retention=policy.retention(collection),
        )
        remove = self._delete_in_one_statement if self.store.is_postgres else self._delete
        return await write_once(
            self.store, w.ref, lambda: remove(w), lambda f: DeleteResult(**f, replayed=True)
        )

    async def _delete_in_one_statement(self, w: _Write) -> DeleteResult:
        """A Delete on PostgreSQL: ``_pg_space_writes.DELETE``, then the refusal, if any,
        in the order of ``_delete``: membership, role, key, existence, version."""
        if not SPACE_ID.match(w.space):
            raise no_such_space(w.space)
        async with self.store.statements() as conn:
            params = _target_params(w, self.store.policy(), await self.handles.key(conn))
            row = (await conn.execute(_pg_space_writes.DELETE, params)).one()
            if row.role is None:
                raise no_such_space(w.space)
            require(Role(row.role), Role.EDITOR, "deleting", w.space)
            if row.removed_version is not None:
                return DeleteResult(w.collection, w.object_id, row.removed_version)
            await self._refuse_keyed(conn, w, row)
        if row.version is None or not row.live:
            raise NotFound(f"{w.where} does not exist")
        if w.expected_version is not None and row.version != w.expected_version:
            raise _conflict(w, _current(w, row, self.store.policy()))
        raise WriteRace(f"{w.where} changed while it was deleted")

    async def _delete(self, w: _Write) -> DeleteResult:
        async with self.store.core_transaction() as conn:
            space, prior, live = await self._locked(conn, w, "deleting")
            if prior is None or not live:
                raise NotFound(f"{w.where} does not exist")
            if w.expected_version is not None and prior.version != w.expected_version:
                raise await self._conflict(conn, w, prior)
            await conn.execute(delete(SpaceObject).where(*w.key()))
            await self._changed(conn, w, space, "delete", prior.version, -1, -prior.size_bytes)
            await self.store.audit_now(
                conn,
                w.ctx,
                "space.object.delete",
                collection=w.collection,
                object_id=w.object_id,
                version=prior.version,
                detail={"space": w.space},
            )
            result = DeleteResult(w.collection, w.object_id, prior.version)
            if w.ref is not None:
                first = {"collection": w.collection, "id": w.object_id, "version": prior.version}
                await self.store.remember(conn, w.ref, first)
        return result

    # --- reads --------------------------------------------------------------------------

    async def get(
        self, ctx: CallContext, space: str, collection: str, object_id: str
    ) -> SpaceObjectRecord:
        user = require_user(ctx)
        policy = self.store.policy()
        shared_collection(policy, collection)
        check_object_id(object_id)
        if not SPACE_ID.match(space):
            raise no_such_space(space)
        key = {"space": space, "user": user, "collection": collection, "object_id": object_id}
        async with self.store.statements() as conn:
            row = (await conn.execute(_GET, key)).one_or_none()
            handle_key = await self.handles.key(conn)
        if row is None:
            raise no_such_space(space)
        if row.object_id is None or not is_live(row, policy.retention(collection), utcnow()):
            raise NotFound(f"{collection}/{object_id} does not exist in space {space}")
        names = policy.spec.identity.name_claim is not None

        def author(user_id: str, display_name: str | None) -> Author:
            return Handles.author(handle_key, user_id, display_name if names else None)

        return SpaceObjectRecord(
            space=space,
            object=to_record(row, policy),
            created_by=author(row.created_by, row.created_by_name),
            updated_by=author(row.updated_by, row.updated_by_name),
        )

    async def list(
        self, ctx: CallContext, space: str, collection: str, page_size: int = 0, cursor: str = ""
    ) -> SpacePage:
        user = require_user(ctx)
        policy = self.store.policy()
        shared_collection(policy, collection)
        if page_size < 0:
            raise InvalidArgument("page_size", "must not be negative")
        size = min(page_size or self.default_page_size, self.max_page_size)
        stmt = (
            select(OBJECTS)
            .join(
                MEMBERS,
                and_(MEMBERS.c.space_id == OBJECTS.c.space_id, MEMBERS.c.user_id == user),
            )
            .where(
                OBJECTS.c.space_id == space,
                OBJECTS.c.collection == collection,
                _live(policy.retention(collection), utcnow()),
            )
            .order_by(OBJECTS.c.object_id)
            .limit(size + 1)
        )
        if cursor:
            stmt = stmt.where(OBJECTS.c.object_id > _cursor.decode_list(cursor, space, collection))
        async with self.store.transaction() as s:
            conn = await s.connection()
            rows = list((await conn.execute(stmt)).all())
            if not rows and not await is_member(conn, space, user):
                raise no_such_space(space)
            more = len(rows) > size
            rows = rows[:size]
            records = await self._records(conn, rows)
        next_cursor = _cursor.encode_list(space, collection, rows[-1].object_id) if more else ""
        return SpacePage(records, next_cursor)

    async def changes(
        self, ctx: CallContext, space: str, cursor: str = "", limit: int = 0
    ) -> ChangePage:
        """The space's changes after ``cursor``, oldest first, at most ``limit``.

        Changes are numbered under the space's row lock, in commit order, so a
        reader that saw change N has seen every change before it: following
        ``next_cursor`` gives every change exactly once.
        """
        user = require_user(ctx)
        if limit < 0:
            raise InvalidArgument("limit", "must not be negative")
        size = min(limit or DEFAULT_FEED_PAGE, MAX_FEED_PAGE)
        after = _cursor.decode_feed(cursor, space)
        stmt = (
            select(CHANGES)
            .join(
                MEMBERS,
                and_(MEMBERS.c.space_id == CHANGES.c.space_id, MEMBERS.c.user_id == user),
            )
            .where(CHANGES.c.space_id == space, CHANGES.c.seq > after)
            .order_by(CHANGES.c.seq)
            .limit(size + 1)
        )
        async with self.store.transaction() as s:
            conn = await s.connection()
            rows = list((await conn.execute(stmt)).all())
            if not rows and not await is_member(conn, space, user):
                raise no_such_space(space)
            more = len(rows) > size
            rows = rows[:size]
            authors = await self.handles.authors(conn, self.store, [r.author for r in rows])
        changes = [
            ChangeRecord(
                r.seq, r.collection, r.object_id, r.version, r.action, authors[r.author], r.at
            )
            for r in rows
        ]
        last = rows[-1].seq if rows else after
        return ChangePage(changes, _cursor.encode_feed(space, last), more)

    async def export(self, ctx: CallContext) -> AsyncIterator[SpaceObjectRecord]:
        """The objects in spaces the caller created or last changed, with their space."""
        user = require_user(ctx)
        policy = self.store.policy()
        now = utcnow()
        mine = or_(OBJECTS.c.created_by == user, OBJECTS.c.updated_by == user)
        async with self.store.transaction() as s:
            conn = await s.connection()
            after: tuple[str, str, str] = ("", "", "")
            key = tuple_(OBJECTS.c.space_id, OBJECTS.c.collection, OBJECTS.c.object_id)
            while True:
                rows = list(
                    (
                        await conn.execute(
                            select(OBJECTS, Space.name.label("space_name"))
                            .join(Space, Space.id == OBJECTS.c.space_id)
                            .where(mine, key > after)
                            .order_by(OBJECTS.c.space_id, OBJECTS.c.collection, OBJECTS.c.object_id)
                            .limit(_EXPORT_BATCH)
                        )
                    ).all()
                )
                live = [r for r in rows if is_live(r, policy.retention(r.collection), now)]
                names = {r.space_id: r.space_name for r in live}
                for record in await self._records(conn, live, names):
                    yield record
                if len(rows) < _EXPORT_BATCH:
                    break
                after = (rows[-1].space_id, rows[-1].collection, rows[-1].object_id)

    async def purge_expired(self, ctx: CallContext, limit: int) -> int:
        """Delete up to ``limit`` expired objects in spaces; each is an "expire" change."""
        policy = self.store.policy()
        now = utcnow()
        purged = 0
        async with self.store.core_transaction() as conn:
            candidates = (
                await conn.execute(
                    select(OBJECTS.c.space_id, OBJECTS.c.collection, OBJECTS.c.object_id)
                    .where(_expired(policy, now))
                    .order_by(OBJECTS.c.space_id)
                    .limit(limit)
                )
            ).all()
            by_space: dict[str, list[Any]] = {}
            for c in candidates:
                by_space.setdefault(c.space_id, []).append(c)
            for space_id, found in by_space.items():
                space = (
                    await conn.execute(
                        select(*_SPACE_COLUMNS).where(Space.id == space_id).with_for_update()
                    )
                ).one()
                seq = space.seq
                for c in found:
                    w = _Write(
                        ctx,
                        UserId(EXPIRY_AUTHOR),
                        space_id,
                        c.collection,
                        c.object_id,
                        None,
                        None,
                        now,
                        policy.retention(c.collection),
                    )
                    gone = (
                        await conn.execute(
                            delete(SpaceObject)
                            .where(*w.key(), _expired(policy, now))
                            .returning(OBJECTS.c.version, OBJECTS.c.size_bytes)
                        )
                    ).one_or_none()
                    if gone is None:
                        continue
                    await self._changed(
                        conn,
                        w,
                        SpaceRow(*space[:3], space.owner, seq, 0, 0, space.created_at),
                        "expire",
                        gone.version,
                        -1,
                        -gone.size_bytes,
                    )
                    seq += 1
                    purged += 1
            if purged:
                await self.store.audit_now(
                    conn, ctx, "space.objects.purge", detail={"count": purged}
                )
        return purged


_SPACE_COLUMNS = (
    Space.id,
    Space.name,
    Space.kind,
    Space.owner,
    Space.seq,
    Space.objects,
    Space.bytes,
    Space.created_at,
)


def _expired(policy: TenantPolicy, now: datetime) -> ColumnElement[bool]:
    clauses: list[ColumnElement[bool]] = [
        and_(OBJECTS.c.expires_at.is_not(None), OBJECTS.c.expires_at <= now)
    ]
    for c in policy.spec.collections:
        retention = policy.retention(c.name)
        if c.shared and retention is not None:
            clauses.append(
                and_(OBJECTS.c.collection == c.name, OBJECTS.c.updated_at <= now - retention)
            )
    return or_(*clauses)


def _conflict(w: _Write, current: SpaceObjectRecord) -> Conflict:
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


def _current(w: _Write, row: Row[Any], policy: TenantPolicy) -> SpaceObjectRecord:
    """The object as a write statement found it, with its authors (for a conflict)."""
    return SpaceObjectRecord(
        space=w.space,
        object=to_record(_PriorRow(w, row), policy),
        created_by=Author(*row.found_created_by),
        updated_by=Author(*row.found_updated_by),
    )


def _utc(value: datetime) -> datetime:
    """A time the driver returned in the session's time zone, in UTC (as the models give it)."""
    return value.astimezone(UTC)


@dataclass(frozen=True)
class _PriorRow:
    """The object as the write statement found it (an ``ObjectRow`` for ``to_record``)."""

    w: _Write
    row: Row[Any]

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
        return _utc(self.row.created_at)

    @property
    def updated_at(self) -> datetime:
        return _utc(self.row.updated_at)

    @property
    def expires_at(self) -> datetime | None:
        expires: datetime | None = self.row.expires_at
        return _utc(expires) if expires is not None else None

    @property
    def correlation_id(self) -> str:
        return str(self.row.correlation_id)


def _target_params(w: _Write, policy: TenantPolicy, handle_key: bytes) -> dict[str, Any]:
    """The parameters ``_pg_space_writes.PUT`` and ``DELETE`` share."""
    inner, outer = Handles.pads(handle_key)
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
        "ipad": inner,
        "opad": outer,
        "context": HANDLE_CONTEXT,
        "handle_prefix": HANDLE_PREFIX,
        "handle_hex": HANDLE_HEX,
        "names": policy.spec.identity.name_claim is not None,
        "pseudonym": PSEUDONYM_PREFIX,
        "pseudonym_chars": PSEUDONYM_SHOWN,
        "former": FORMER_MEMBER,
    }


def _put_params(w: _Write, policy: TenantPolicy, handle_key: bytes) -> dict[str, Any]:
    """The parameters of ``_pg_space_writes.PUT``."""
    q = policy.quotas
    # What the key remembers, less the version and creation time only the write knows.
    record = record_to_json(w.record(0, w.now))
    return {
        **_target_params(w, policy, handle_key),
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


def _put_json(r: SpacePutResult) -> dict[str, Any]:
    o = r.object
    return {
        "space": o.space,
        "object": record_to_json(o.object),
        "created_by": [o.created_by.member, o.created_by.name],
        "updated_by": [o.updated_by.member, o.updated_by.name],
        "created": r.created,
    }


def _replayed_put(first: dict[str, Any]) -> SpacePutResult:
    from tenant_worker._records import Author

    record = SpaceObjectRecord(
        space=first["space"],
        object=record_from_json(first["object"]),
        created_by=Author(*first["created_by"]),
        updated_by=Author(*first["updated_by"]),
    )
    return SpacePutResult(record, first["created"], replayed=True)
