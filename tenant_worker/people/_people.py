"""Per-user data that is not an object: identity links, preferences, export, erasure."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select, tuple_, update

from stowage.values import find_problem, string_problem
from tenant_worker._errors import Conflict, InvalidArgument, QuotaExceeded, WriteRace
from tenant_worker._records import (
    CallContext,
    EraseResult,
    IdentityRecord,
    ObjectRecord,
    PreferencesRecord,
    UsageRecord,
    UserId,
)
from tenant_worker.people._pseudonyms import pseudonymise_audit
from tenant_worker.storage._db import checkpoint_after_erasure
from tenant_worker.storage._json import check_value, dumps, loads_object, merge_patch, request_hash
from tenant_worker.storage._models import IdempotencyKey, Preference, StoredObject, User, utcnow
from tenant_worker.storage._retries import Replayed, write_once
from tenant_worker.storage._store import (
    ErasureStep,
    KeyRef,
    Store,
    check_key,
    is_live,
    require_user,
    to_record,
)

_EXPORT_BATCH = 200


class People:
    def __init__(self, store: Store, erasure_steps: Sequence[ErasureStep] = ()) -> None:
        self.store = store
        #: What other services erase of a user, in the erasure's transaction (spaces).
        self.erasure_steps = tuple(erasure_steps)

    async def resolve(self, ctx: CallContext, issuer: str, subject: str) -> tuple[UserId, bool]:
        """The internal id of (issuer, subject), created on first use; unique under races."""
        if not issuer or len(issuer) > 2048:
            raise InvalidArgument("issuer", "must be 1-2048 characters")
        if not subject or len(subject) > 1024:
            raise InvalidArgument("subject", "must be 1-1024 characters")
        for field, text in (("issuer", issuer), ("subject", subject)):
            if (problem := string_problem(text)) is not None:
                raise InvalidArgument(field, problem)
        query = select(User.id).where(User.issuer == issuer, User.subject == subject)
        async with self.store.reading() as s:
            found = await s.scalar(query)
        if found is not None:
            return UserId(found), False
        user_id = uuid.uuid4().hex
        try:
            async with self.store.transaction() as s:
                s.add(User(id=user_id, issuer=issuer, subject=subject, created_at=utcnow()))
                await s.flush()
                self.store.audit(s, ctx, "user.create", user_id=user_id)
            return UserId(user_id), True
        except WriteRace:
            # Another call created the link first: theirs is the one.
            async with self.store.reading() as s:
                found = await s.scalar(query)
            if found is None:
                raise
            return UserId(found), False

    async def preferences(self, ctx: CallContext) -> PreferencesRecord:
        owner = require_user(ctx)
        async with self.store.reading() as s:
            row = await s.get(Preference, owner)
        if row is None:
            return PreferencesRecord({}, 0, None)
        return PreferencesRecord(row.data, row.version, row.updated_at)

    async def update_preferences(
        self,
        ctx: CallContext,
        merge_patch_json: bytes,
        expected_version: int | None = None,
        idempotency_key: str = "",
    ) -> PreferencesRecord:
        owner = require_user(ctx)
        check_key(idempotency_key)
        patch = loads_object(merge_patch_json, "merge_patch_json")
        check_value(patch, "patch")
        rhash = request_hash("preferences", dumps(patch), expected_version)
        ref = KeyRef(owner, idempotency_key, "preferences", rhash) if idempotency_key else None
        return await write_once(
            self.store,
            ref,
            lambda: self._merge(ctx, owner, patch, expected_version, ref),
            lambda first: _prefs_from_json(first, replayed=True),
        )

    async def _merge(
        self,
        ctx: CallContext,
        owner: UserId,
        patch: dict[str, Any],
        expected_version: int | None,
        ref: KeyRef | None,
    ) -> PreferencesRecord:
        """One attempt: replay a used key, check the version and size, write, audit, remember."""
        limit = self.store.policy().quotas.max_object_bytes
        async with self.store.core_transaction() as conn:
            if ref is not None and (first := await self.store.replay(conn, ref)) is not None:
                raise Replayed(first)
            row = (
                await conn.execute(
                    select(Preference.data, Preference.version)
                    .where(Preference.owner == owner)
                    .with_for_update()
                )
            ).one_or_none()
            current, stored = (row.version, row.data) if row is not None else (0, {})
            if expected_version is not None and expected_version != current:
                raise Conflict(
                    f"preferences are at version {current}, not {expected_version}",
                    PreferencesRecord(stored, current, None),
                )
            data = merge_patch(stored, patch)
            _check_merged(data)
            size = len(dumps(data))
            if size > limit:
                raise QuotaExceeded(
                    "maxObjectBytes",
                    f"preferences would be {size} bytes, the limit is {limit} "
                    "(quotas.maxObjectBytes)",
                )
            result = PreferencesRecord(data, current + 1, utcnow())
            values = {
                "data": data,
                "version": result.version,
                "updated_at": result.updated_at,
                "correlation_id": ctx.correlation_id,
            }
            if row is None:
                await conn.execute(insert(Preference).values(owner=owner, **values))
            else:
                await conn.execute(
                    update(Preference).where(Preference.owner == owner).values(**values)
                )
            await self.store.audit_now(conn, ctx, "preferences.update", version=result.version)
            if ref is not None:
                await self.store.remember(conn, ref, _prefs_json(result))
        return result

    async def export(
        self, ctx: CallContext
    ) -> AsyncIterator[IdentityRecord | PreferencesRecord | ObjectRecord]:
        """Everything held about the caller, in one consistent read."""
        owner = require_user(ctx)
        policy = self.store.policy()
        now = utcnow()
        async with self.store.transaction() as s:
            for link in await s.scalars(select(User).where(User.id == owner)):
                yield IdentityRecord(link.issuer, link.subject, link.created_at)
            prefs = await s.get(Preference, owner)
            if prefs is not None:
                yield PreferencesRecord(prefs.data, prefs.version, prefs.updated_at)
            after: tuple[str, str] = ("", "")
            while True:
                rows = (
                    await s.scalars(
                        select(StoredObject)
                        .where(
                            StoredObject.owner == owner,
                            tuple_(StoredObject.collection, StoredObject.object_id) > after,
                        )
                        .order_by(StoredObject.collection, StoredObject.object_id)
                        .limit(_EXPORT_BATCH)
                    )
                ).all()
                for row in rows:
                    if is_live(row, policy.retention(row.collection), now):
                        yield to_record(row, policy)
                if len(rows) < _EXPORT_BATCH:
                    break
                after = (rows[-1].collection, rows[-1].object_id)

    async def usage(self, ctx: CallContext) -> UsageRecord:
        """The caller's totals and per-collection breakdown, beside the quotas that apply.

        Counts every stored object, expired ones not yet purged included (they
        count against quotas until the purge removes them).
        """
        owner = require_user(ctx)
        quotas = self.store.policy().quotas
        async with self.store.reading() as s:
            rows = (
                await s.execute(
                    select(
                        StoredObject.collection,
                        func.count(),
                        func.coalesce(func.sum(StoredObject.size_bytes), 0),
                    )
                    .where(StoredObject.owner == owner)
                    .group_by(StoredObject.collection)
                    .order_by(StoredObject.collection)
                )
            ).all()
        by_collection = tuple((str(c), int(n), int(b)) for c, n, b in rows)
        return UsageRecord(
            objects=sum(n for _, n, _ in by_collection),
            bytes=sum(b for _, _, b in by_collection),
            by_collection=by_collection,
            max_objects=quotas.per_user_max_objects,
            max_bytes=quotas.per_user_max_bytes,
            max_object_bytes=quotas.max_object_bytes,
        )

    async def erase(self, ctx: CallContext, confirm: bool) -> EraseResult:
        """Delete everything of the caller in one transaction; audit that it happened."""
        owner = require_user(ctx)
        if not confirm:
            raise InvalidArgument("confirm", "must be true to erase all of the user's data")
        async with self.store.transaction() as s:
            # Lock the identity first: writes of this user wait, then find it gone.
            await s.execute(select(User.id).where(User.id == owner).with_for_update())
            steps: dict[str, Any] = {}
            for step in self.erasure_steps:
                steps.update(await step(s, ctx, owner))
            sizes = (
                await s.scalars(
                    delete(StoredObject)
                    .where(StoredObject.owner == owner)
                    .returning(StoredObject.size_bytes)
                )
            ).all()
            prefs = await s.execute(delete(Preference).where(Preference.owner == owner))
            await s.execute(delete(IdempotencyKey).where(IdempotencyKey.owner == owner))
            links = await s.execute(delete(User).where(User.id == owner))
            await pseudonymise_audit(s, owner)
            result = EraseResult(
                objects_deleted=len(sizes),
                preferences_deleted=bool(getattr(prefs, "rowcount", 0)),
                identities_deleted=int(getattr(links, "rowcount", 0)),
                steps=steps,
            )
            self.store.audit(
                s,
                ctx,
                "user.erase",
                detail={
                    "objects": result.objects_deleted,
                    "preferences": result.preferences_deleted,
                    "identities": result.identities_deleted,
                    **steps,
                },
            )
            await s.flush()
            await self.store.charge(
                s, -len(sizes), -sum(sizes), owner=owner, enforce=False, per_user=False
            )
            engine = s.bind
        await checkpoint_after_erasure(engine)
        return result


def _check_merged(data: dict[str, Any]) -> None:
    """The merged preferences keep to the rule too (a patch onto data stored before it)."""
    problem = find_problem(data)
    if problem is not None:
        raise InvalidArgument(
            "patch",
            f"the preferences would break a limit at {problem.field('preferences')}: "
            f"it {problem.message}; set that key to null in the patch to replace it",
        )


def _prefs_json(p: PreferencesRecord) -> dict[str, Any]:
    return {
        "data": p.data,
        "version": p.version,
        "updated_at": p.updated_at.isoformat() if p.updated_at else None,
    }


def _prefs_from_json(d: dict[str, Any], replayed: bool) -> PreferencesRecord:
    from datetime import datetime

    updated = datetime.fromisoformat(d["updated_at"]) if d["updated_at"] else None
    return PreferencesRecord(d["data"], d["version"], updated, replayed=replayed)
