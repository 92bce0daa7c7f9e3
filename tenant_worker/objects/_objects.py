"""Versioned objects: create, replace, get, list and delete for one user.

A write reads as a sentence: validate the request into a plan, then
``write_once`` (replay a used key, retry a lost race) carries the plan out
with ``_object_writes`` (check the version, write, audit, charge the quotas).
"""

from __future__ import annotations

import secrets
import time
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import bindparam, select

from tenant_worker._errors import InvalidArgument, NotFound
from tenant_worker._records import CallContext, DeleteResult, ObjectRecord, Page, PutResult
from tenant_worker.objects import _cursor
from tenant_worker.objects._object_writes import (
    PutPlan,
    Target,
    delete_in_one_statement,
    delete_in_transaction,
    put_in_one_statement,
    put_in_transaction,
)
from tenant_worker.storage._db import Prepared, one_row
from tenant_worker.storage._json import check_value, dumps, loads_object, request_hash
from tenant_worker.storage._models import StoredObject, utcnow
from tenant_worker.storage._retries import write_once
from tenant_worker.storage._store import (
    FileCheck,
    KeyRef,
    ObjectRow,
    Store,
    check_file_ids,
    check_key,
    check_object_id,
    check_object_size,
    check_put_arguments,
    expiry,
    is_live,
    live_clause,
    no_files,
    record_from_json,
    require_user,
    to_record,
)

_OBJECTS = StoredObject.__table__
#: One object by its key; built once, so its compiled form is cached.
_GET = select(_OBJECTS).where(
    _OBJECTS.c.owner == bindparam("owner"),
    _OBJECTS.c.collection == bindparam("collection"),
    _OBJECTS.c.object_id == bindparam("object_id"),
)


class _Stored(NamedTuple):
    """An object as :data:`_PG_GET` returns it (an ``ObjectRow``)."""

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
    #: The file ids the version names (None: none).
    files: list[str] | None


#: ``_GET`` on PostgreSQL: prepared, run on the driver's connection.
_PG_GET = Prepared(
    "SELECT collection, object_id, data, schema_version, version, size_bytes, created_at,"
    " updated_at, expires_at, correlation_id, files FROM objects"
    " WHERE owner = $1 AND collection = $2 AND object_id = $3",
    ("owner", "collection", "object_id"),
    _Stored._make,
)


def new_object_id() -> str:
    """Time-ordered, so a list without ids given comes back in creation order."""
    return f"{time.time_ns() // 1000:014x}{secrets.token_hex(5)}"


def _replayed_put(first: dict[str, Any]) -> PutResult:
    return PutResult(record_from_json(first["object"]), first["created"], replayed=True)


def _replayed_delete(first: dict[str, Any]) -> DeleteResult:
    return DeleteResult(**first, replayed=True)


def _key_ref(owner: str, key: str, operation: str, rhash: str) -> KeyRef | None:
    return KeyRef(owner, key, operation, rhash) if key else None


class Objects:
    def __init__(
        self,
        store: Store,
        default_page_size: int = 20,
        max_page_size: int = 100,
        check_files: FileCheck = no_files,
    ):
        self.store = store
        self.default_page_size = default_page_size
        self.max_page_size = max_page_size
        #: Whether an object may name the files a Put gives (in the Put's transaction).
        self.check_files = check_files

    async def put(
        self,
        ctx: CallContext,
        collection: str,
        object_id: str,
        data_json: bytes,
        expected_version: int | None = None,
        idempotency_key: str = "",
        ttl_seconds: int = 0,
        files: tuple[str, ...] = (),
    ) -> PutResult:
        """Create or replace an object; ``files`` are the user's own files this version
        names (none: the version names no files)."""
        plan = self._plan_put(
            ctx,
            collection,
            object_id,
            data_json,
            expected_version,
            idempotency_key,
            ttl_seconds,
            check_file_ids(files),
        )
        if self.store.is_postgres and not plan.files:
            return await write_once(
                self.store,
                plan.target.ref,
                lambda: put_in_one_statement(self.store, plan),
                _replayed_put,
            )
        return await write_once(
            self.store,
            plan.target.ref,
            lambda: put_in_transaction(self.store, plan, self.check_files),
            _replayed_put,
        )

    def _plan_put(
        self,
        ctx: CallContext,
        collection: str,
        object_id: str,
        data_json: bytes,
        expected_version: int | None,
        idempotency_key: str,
        ttl_seconds: int,
        files: tuple[str, ...] = (),
    ) -> PutPlan:
        """Validate a Put: the caller, the ids, the numbers, the data against the schema."""
        owner = require_user(ctx)
        policy = self.store.policy()
        coll = policy.personal(collection)
        check_put_arguments(object_id, idempotency_key, expected_version, ttl_seconds)
        data = loads_object(data_json, "data_json")
        check_value(data, "data")
        coll.validate(data)
        encoded = dumps(data)
        check_object_size(len(encoded), policy.quotas)
        rhash = request_hash(
            "put", collection, object_id, encoded, expected_version, ttl_seconds, *files
        )
        now = utcnow()
        retention = policy.retention(collection)
        target = Target(
            ctx=ctx,
            owner=owner,
            collection=collection,
            object_id=object_id or new_object_id(),
            expected_version=expected_version,
            ref=_key_ref(owner, idempotency_key, "put", rhash),
            now=now,
            retention=retention,
        )
        expires_at = expiry(now, ttl_seconds, retention)
        return PutPlan(target, data, encoded, coll.schema_version, expires_at, policy.quotas, files)

    async def get(self, ctx: CallContext, collection: str, object_id: str) -> ObjectRecord:
        owner = require_user(ctx)
        policy = self.store.policy()
        policy.personal(collection)
        check_object_id(object_id)
        key = {"owner": owner, "collection": collection, "object_id": object_id}
        row: ObjectRow | None
        async with self.store.statements() as conn:
            if self.store.is_postgres:
                row = await one_row(conn, _PG_GET, key)
            else:
                row = cast("ObjectRow | None", (await conn.execute(_GET, key)).one_or_none())
        if row is None or not is_live(row, policy.retention(collection), utcnow()):
            raise NotFound(f"{collection}/{object_id} does not exist")
        return to_record(row, policy)

    async def list(
        self, ctx: CallContext, collection: str, page_size: int = 0, cursor: str = ""
    ) -> Page:
        owner = require_user(ctx)
        policy = self.store.policy()
        policy.personal(collection)
        if page_size < 0:
            raise InvalidArgument("page_size", "must not be negative")
        size = min(page_size or self.default_page_size, self.max_page_size)
        stmt = (
            select(_OBJECTS)
            .where(
                StoredObject.owner == owner,
                StoredObject.collection == collection,
                live_clause(policy.retention(collection), utcnow()),
            )
            .order_by(StoredObject.object_id)
            .limit(size + 1)
        )
        if cursor:
            stmt = stmt.where(StoredObject.object_id > _cursor.decode(cursor, owner, collection))
        async with self.store.statements() as conn:
            rows = cast("list[ObjectRow]", list((await conn.execute(stmt)).all()))
        more = len(rows) > size
        rows = rows[:size]
        next_cursor = _cursor.encode(owner, collection, rows[-1].object_id) if more else ""
        return Page([to_record(r, policy) for r in rows], next_cursor)

    async def delete(
        self,
        ctx: CallContext,
        collection: str,
        object_id: str,
        expected_version: int | None = None,
        idempotency_key: str = "",
    ) -> DeleteResult:
        owner = require_user(ctx)
        policy = self.store.policy()
        policy.personal(collection)
        check_object_id(object_id)
        check_key(idempotency_key)
        rhash = request_hash("delete", collection, object_id, expected_version)
        target = Target(
            ctx=ctx,
            owner=owner,
            collection=collection,
            object_id=object_id,
            expected_version=expected_version,
            ref=_key_ref(owner, idempotency_key, "delete", rhash),
            now=utcnow(),
            retention=policy.retention(collection),
        )
        write = delete_in_one_statement if self.store.is_postgres else delete_in_transaction
        return await write_once(
            self.store, target.ref, lambda: write(self.store, target), _replayed_delete
        )
