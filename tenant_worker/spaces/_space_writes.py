"""Writes in a space: put, delete and the purge of expired objects, each one transaction.

The space and the caller's membership are locked first (``_access.role_in``),
so the role is checked against the membership as it stands when the data is
written, and the space's changes are numbered in commit order. Then the
idempotency key, the object and its expected version, the write, the change
row, the audit row and the quotas of the space's owner. On PostgreSQL a Put or
a Delete is all of that in one statement (``_pg_space_writes``), one round trip
in autocommit; on SQLite a few statements in one transaction (``_put``,
``_delete``).

A Put that names files (of the same space) takes the transaction on every
database, with their check (``FileCheck``) after the space is locked; the one
statement writes versions that name none, so a Put without files pays nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from tenant_worker._errors import (
    Conflict,
    NotFound,
    WorkerError,
    WriteRace,
)
from tenant_worker._policy import TenantPolicy
from tenant_worker._records import (
    CallContext,
    DeleteResult,
    SpaceObjectRecord,
    SpacePutResult,
    UserId,
)
from tenant_worker.spaces import _pg_space_writes
from tenant_worker.spaces._access import (
    EXPIRY_AUTHOR,
    SPACE_ID,
    Conn,
    Handles,
    SpaceRow,
    no_such_space,
    role_in,
)
from tenant_worker.spaces._pg_space_writes import SeenRow
from tenant_worker.spaces._roles import Role, require
from tenant_worker.spaces._write_plan import (
    OBJECTS,
    SPACE_OWNER,
    Write,
    conflict_of,
    found_object,
    new_object_id,
    put_json,
    put_params,
    replayed_put,
    shared_collection,
    target_params,
    utc,
)
from tenant_worker.storage._db import one_row
from tenant_worker.storage._json import check_value, dumps, loads_object, request_hash
from tenant_worker.storage._models import Space, SpaceChange, SpaceObject, utcnow
from tenant_worker.storage._retries import Replayed, write_once
from tenant_worker.storage._store import (
    FileCheck,
    FirstUse,
    KeyRef,
    Store,
    Totals,
    check_file_ids,
    check_key,
    check_object_id,
    check_object_size,
    check_put_arguments,
    expiry,
    first_result,
    is_live,
    no_files,
    quota_refusal,
    require_user,
    to_record,
)


class SpaceWrites:
    """Put, delete and purge in spaces (``SpaceObjects`` adds the reads)."""

    def __init__(
        self,
        store: Store,
        handles: Handles,
        default_page_size: int = 20,
        max_page_size: int = 100,
        check_files: FileCheck = no_files,
    ) -> None:
        self.store = store
        self.handles = handles
        self.default_page_size = default_page_size
        self.max_page_size = max_page_size
        #: Whether an object may name the files a Put gives (in the Put's transaction).
        self.check_files = check_files

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
        files: tuple[str, ...] = (),
    ) -> SpacePutResult:
        """Create or replace an object in a space; ``files`` are files of that space this
        version names (none: the version names no files)."""
        w = self._plan_put(
            ctx,
            space,
            collection,
            object_id,
            data_json,
            expected_version,
            idempotency_key,
            ttl_seconds,
            check_file_ids(files),
        )
        one_statement = self.store.is_postgres and not w.files
        put = self._put_in_one_statement if one_statement else self._put
        return await write_once(self.store, w.ref, lambda: put(w), replayed_put)

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
        files: tuple[str, ...] = (),
    ) -> Write:
        user = require_user(ctx)
        policy = self.store.policy()
        coll = shared_collection(policy, collection)
        check_put_arguments(object_id, idempotency_key, expected_version, ttl_seconds)
        data = loads_object(data_json, "data_json")
        check_value(data, "data")
        coll.validate(data)
        encoded = dumps(data)
        check_object_size(len(encoded), policy.quotas)
        rhash = request_hash(
            "space.put",
            space,
            collection,
            object_id,
            encoded,
            expected_version,
            ttl_seconds,
            *files,
        )
        now = utcnow()
        retention = policy.retention(collection)
        return Write(
            ctx=ctx,
            user=user,
            space=space,
            collection=collection,
            object_id=object_id or new_object_id(),
            expected_version=expected_version,
            ref=KeyRef(user, idempotency_key, "space.put", rhash) if idempotency_key else None,
            now=now,
            retention=retention,
            data=data,
            encoded=encoded,
            schema_version=coll.schema_version,
            expires_at=expiry(now, ttl_seconds, retention),
            files=files,
        )

    async def _locked(
        self, conn: AsyncConnection, w: Write, doing: str
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

    async def _conflict(self, conn: AsyncConnection, w: Write, prior: Any) -> Conflict:
        """A stale expected version: the current object, who changed it and when."""
        (current,) = await self._records(conn, [prior])
        return conflict_of(w, current)

    async def _put_in_one_statement(self, w: Write) -> SpacePutResult:
        """A Put on PostgreSQL: ``_pg_space_writes.PUT``, then the refusal, if any, from
        what it saw, in the order ``_put`` checks: membership, role, key, version, quotas."""
        if not SPACE_ID.match(w.space):
            raise no_such_space(w.space)
        async with self.store.statements() as conn:
            key = await self.handles.key(conn)
            found = await one_row(
                conn, _pg_space_writes.PUT, put_params(w, self.store.policy(), key)
            )
            if found is None:
                raise AssertionError("a write statement returned no row")
            row = found
            if row.role is None:
                raise no_such_space(w.space)
            require(Role(row.role), Role.EDITOR, "saving", w.space)
            if row.written_version is not None:
                me = Handles.author(key, w.user, row.me_name)
                creator = row.written_created_by
                record = SpaceObjectRecord(
                    space=w.space,
                    object=w.record(row.written_version, utc(row.written_created_at)),
                    created_by=me
                    if creator == w.user
                    else Handles.author(key, creator, row.written_created_by_name),
                    updated_by=me,
                )
                return SpacePutResult(record, created=row.written_version == 1)
            await self._refuse_keyed(conn, w, row)
        raise self._put_refusal(w, row, key)

    async def _refuse_keyed(self, conn: AsyncConnection, w: Write, row: SeenRow) -> None:
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

    def _put_refusal(self, w: Write, row: _pg_space_writes.PutRow, key: bytes) -> WorkerError:
        """Why the statement wrote nothing: a stale version, a quota, or a lost race."""
        policy = self.store.policy()
        expected = w.expected_version
        stale = row.version is not None and row.live and expected is not None
        if stale and (expected == 0 or row.version != expected):
            return conflict_of(w, found_object(w, row, policy, key))
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

    async def _put(self, w: Write) -> SpacePutResult:
        async with self.store.core_transaction() as conn:
            space, prior, live = await self._locked(conn, w, "saving")
            expected = w.expected_version
            stale = live and prior is not None and expected is not None
            if stale and (expected == 0 or prior.version != expected):
                raise await self._conflict(conn, w, prior)
            if not live and expected:
                raise NotFound(f"{w.where} does not exist (expected version {expected})")
            await self.check_files(conn, w.user, w.files, w.space)
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
                "files": list(w.files) or None,
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
                await self.store.remember(conn, w.ref, put_json(result))
        return result

    async def _changed(
        self,
        conn: AsyncConnection,
        w: Write,
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
        w = Write(
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

    async def _delete_in_one_statement(self, w: Write) -> DeleteResult:
        """A Delete on PostgreSQL: ``_pg_space_writes.DELETE``, then the refusal, if any,
        in the order of ``_delete``: membership, role, key, existence, version."""
        if not SPACE_ID.match(w.space):
            raise no_such_space(w.space)
        async with self.store.statements() as conn:
            key = await self.handles.key(conn)
            seen = await one_row(
                conn, _pg_space_writes.DELETE, target_params(w, self.store.policy())
            )
            if seen is None:
                raise AssertionError("a write statement returned no row")
            row = seen
            if row.role is None:
                raise no_such_space(w.space)
            require(Role(row.role), Role.EDITOR, "deleting", w.space)
            if row.removed_version is not None:
                return DeleteResult(w.collection, w.object_id, row.removed_version)
            await self._refuse_keyed(conn, w, row)
        if row.version is None or not row.live:
            raise NotFound(f"{w.where} does not exist")
        if w.expected_version is not None and row.version != w.expected_version:
            raise conflict_of(w, found_object(w, row, self.store.policy(), key))
        raise WriteRace(f"{w.where} changed while it was deleted")

    async def _delete(self, w: Write) -> DeleteResult:
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
                    w = Write(
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
