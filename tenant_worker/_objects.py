"""Versioned objects: create, replace, get, list and delete for one user."""

from __future__ import annotations

import secrets
import time
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tenant_worker import _cursor
from tenant_worker._db import is_foreign_key_violation
from tenant_worker._errors import Conflict, InvalidArgument, NotFound, QuotaExceeded, UnknownUser
from tenant_worker._json import dumps, loads_object, request_hash
from tenant_worker._models import StoredObject, utcnow
from tenant_worker._records import CallContext, DeleteResult, ObjectRecord, Page, PutResult
from tenant_worker._store import (
    Store,
    check_key,
    check_object_id,
    is_live,
    live_clause,
    record_from_json,
    record_to_json,
    require_user,
    to_record,
)

#: Attempts of a write whose transaction lost a race on a unique key.
_ATTEMPTS = 4


def new_object_id() -> str:
    """Time-ordered, so a list without ids given comes back in creation order."""
    return f"{time.time_ns() // 1000:014x}{secrets.token_hex(5)}"


class Objects:
    def __init__(self, store: Store, default_page_size: int = 20, max_page_size: int = 100):
        self.store = store
        self.default_page_size = default_page_size
        self.max_page_size = max_page_size

    async def put(
        self,
        ctx: CallContext,
        collection: str,
        object_id: str,
        data_json: bytes,
        expected_version: int | None = None,
        idempotency_key: str = "",
        ttl_seconds: int = 0,
    ) -> PutResult:
        owner = require_user(ctx)
        policy = self.store.policy()
        coll = policy.collection(collection)
        if object_id:
            check_object_id(object_id)
        check_key(idempotency_key)
        if expected_version is not None and expected_version < 0:
            raise InvalidArgument("expected_version", "must be 0 (create only) or a version")
        if ttl_seconds < 0:
            raise InvalidArgument("ttl_seconds", "must not be negative")
        data = loads_object(data_json, "data_json")
        coll.validate(data)
        encoded = dumps(data)
        size = len(encoded)
        if size > policy.quotas.max_object_bytes:
            raise QuotaExceeded(
                "maxObjectBytes",
                f"object is {size} bytes, the limit is {policy.quotas.max_object_bytes} bytes "
                "per object (quotas.maxObjectBytes); store less data in one object",
            )
        rhash = request_hash("put", collection, object_id, encoded, expected_version, ttl_seconds)
        object_id = object_id or new_object_id()
        retention = policy.retention(collection)

        for attempt in range(_ATTEMPTS):
            try:
                async with self.store.transaction() as s:
                    if idempotency_key:
                        first = await self.store.replay(s, owner, idempotency_key, "put", rhash)
                        if first is not None:
                            return PutResult(
                                record_from_json(first["object"]), first["created"], replayed=True
                            )
                    now = utcnow()
                    row = await s.get(
                        StoredObject,
                        (owner, collection, object_id),
                        with_for_update=True,
                        populate_existing=True,
                    )
                    live = row is not None and is_live(row, retention, now)
                    try:
                        if live and expected_version == 0:
                            assert row is not None
                            raise Conflict(
                                f"{collection}/{object_id} already exists at version "
                                f"{row.version}; expected_version 0 creates only",
                                to_record(row, policy),
                            )
                        if live and expected_version is not None:
                            assert row is not None
                            if row.version != expected_version:
                                raise Conflict(
                                    f"{collection}/{object_id} is at version {row.version}, "
                                    f"not {expected_version}",
                                    to_record(row, policy),
                                )
                        if not live and expected_version:
                            raise NotFound(
                                f"{collection}/{object_id} does not exist "
                                f"(expected version {expected_version})"
                            )
                    except (Conflict, NotFound):
                        if idempotency_key:
                            # A concurrent call with the same key may have won; return its result.
                            first = await self.store.replay(s, owner, idempotency_key, "put", rhash)
                            if first is not None:
                                return PutResult(
                                    record_from_json(first["object"]), first["created"], True
                                )
                        raise

                    ttl_expiry = now + timedelta(seconds=ttl_seconds) if ttl_seconds else None
                    retention_expiry = now + retention if retention else None
                    expires_at = min(
                        (t for t in (ttl_expiry, retention_expiry) if t is not None), default=None
                    )
                    if row is None:
                        row = StoredObject(
                            owner=owner,
                            collection=collection,
                            object_id=object_id,
                            created_at=now,
                            version=0,
                            size_bytes=0,
                        )
                        s.add(row)
                        d_objects, prior_size = 1, 0
                    else:
                        d_objects, prior_size = 0, row.size_bytes
                        if not live:  # expired, not yet purged: it starts over
                            row.created_at = now
                            row.version = 0
                    created = not live
                    row.data = data
                    row.schema_version = coll.schema_version
                    row.version = row.version + 1
                    row.size_bytes = size
                    row.updated_at = now
                    row.expires_at = expires_at
                    row.correlation_id = ctx.correlation_id
                    await s.flush()
                    record = to_record(row, policy)
                    self.store.audit(
                        s,
                        ctx,
                        "object.create" if created else "object.replace",
                        collection=collection,
                        object_id=object_id,
                        version=row.version,
                    )
                    if idempotency_key:
                        self.store.remember(
                            s,
                            owner,
                            idempotency_key,
                            "put",
                            rhash,
                            {"object": record_to_json(record), "created": created},
                        )
                        await s.flush()
                    await self.store.charge(s, d_objects, size - prior_size, owner=owner)
                return PutResult(record, created)
            except IntegrityError as e:
                if is_foreign_key_violation(e):
                    raise UnknownUser("unknown user id; resolve the identity again") from e
                if attempt == _ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def get(self, ctx: CallContext, collection: str, object_id: str) -> ObjectRecord:
        owner = require_user(ctx)
        policy = self.store.policy()
        policy.collection(collection)
        check_object_id(object_id)
        async with self.store.reading() as s:
            row = await s.get(StoredObject, (owner, collection, object_id))
            if row is None or not is_live(row, policy.retention(collection), utcnow()):
                raise NotFound(f"{collection}/{object_id} does not exist")
            return to_record(row, policy)

    async def list(
        self, ctx: CallContext, collection: str, page_size: int = 0, cursor: str = ""
    ) -> Page:
        owner = require_user(ctx)
        policy = self.store.policy()
        policy.collection(collection)
        if page_size < 0:
            raise InvalidArgument("page_size", "must not be negative")
        size = min(page_size or self.default_page_size, self.max_page_size)
        stmt = (
            select(StoredObject)
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
        async with self.store.reading() as s:
            rows = list((await s.scalars(stmt)).all())
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
        policy.collection(collection)
        check_object_id(object_id)
        check_key(idempotency_key)
        rhash = request_hash("delete", collection, object_id, expected_version)
        for attempt in range(_ATTEMPTS):
            try:
                async with self.store.transaction() as s:
                    if idempotency_key:
                        first = await self.store.replay(s, owner, idempotency_key, "delete", rhash)
                        if first is not None:
                            return DeleteResult(**first, replayed=True)
                    row = await s.get(
                        StoredObject,
                        (owner, collection, object_id),
                        with_for_update=True,
                        populate_existing=True,
                    )
                    if row is None or not is_live(row, policy.retention(collection), utcnow()):
                        raise NotFound(f"{collection}/{object_id} does not exist")
                    if expected_version is not None and row.version != expected_version:
                        raise Conflict(
                            f"{collection}/{object_id} is at version {row.version}, "
                            f"not {expected_version}",
                            to_record(row, policy),
                        )
                    result = DeleteResult(collection, object_id, row.version)
                    await s.delete(row)
                    self.store.audit(
                        s,
                        ctx,
                        "object.delete",
                        collection=collection,
                        object_id=object_id,
                        version=row.version,
                    )
                    if idempotency_key:
                        self.store.remember(
                            s,
                            owner,
                            idempotency_key,
                            "delete",
                            rhash,
                            {"collection": collection, "id": object_id, "version": row.version},
                        )
                    await s.flush()
                    await self.store.charge(s, -1, -row.size_bytes, owner=owner)
                return result
            except IntegrityError as e:
                if is_foreign_key_violation(e):
                    raise UnknownUser("unknown user id; resolve the identity again") from e
                if attempt == _ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")
