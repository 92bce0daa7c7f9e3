"""Access revocations: recorded once here, read by every gateway.

A revocation says: tokens of this identity (or of every identity) issued at or
before ``revoked_before`` are refused. The worker only records and lists them;
the gateways enforce them. Revocations are append-only and ordered by id, and
recording one holds a table lock until commit, so ids become visible in order:
a gateway that has read up to id N never misses one below N later.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from stowage.revocation import REQUESTERS, RevocationRequest
from stowage.wire import identity_digest
from tenant_worker._errors import InvalidArgument, UnknownUser
from tenant_worker._records import CallContext, RevocationRecord
from tenant_worker.storage._models import AccessRevocation, User, utcnow
from tenant_worker.storage._store import Store

#: How far ahead of now a revocation time may lie (clock skew between machines).
MAX_AHEAD = timedelta(minutes=1)
DEFAULT_PAGE = 1000
MAX_PAGE = 10_000


def _record(row: AccessRevocation) -> RevocationRecord:
    return RevocationRecord(row.id, row.identity, row.revoked_before, row.recorded_at)


def _check_request(request: RevocationRequest) -> None:
    """Refuse a revocation request that names its identity ambiguously or says too much."""
    issuer, subject = request.issuer, request.subject
    if request.requested_by not in REQUESTERS:
        raise InvalidArgument("requested_by", f"must be one of {sorted(REQUESTERS)}")
    if len(request.reason) > 200:
        raise InvalidArgument("reason", "must be at most 200 characters")
    if request.all_identities and (issuer or subject):
        raise InvalidArgument("all_identities", "name no issuer or subject with it")
    if bool(issuer) != bool(subject):
        raise InvalidArgument("subject" if issuer else "issuer", "required with the other")


async def _identity(
    s: AsyncSession, ctx: CallContext, request: RevocationRequest
) -> tuple[str | None, str | None]:
    """(identity digest, user id) a revocation names; (None, None) for every identity.

    A named identity need not be a known user (its user id is then None); without
    one, the caller's own identity is revoked.
    """
    if request.issuer:
        issuer, subject = request.issuer, request.subject
        user_id = await s.scalar(
            select(User.id).where(User.issuer == issuer, User.subject == subject)
        )
        return identity_digest(issuer, subject), user_id
    if request.all_identities:
        return None, None
    if ctx.user_id is None:
        raise InvalidArgument("issuer", "name an identity, all_identities or a user")
    link = (
        await s.execute(select(User.issuer, User.subject).where(User.id == ctx.user_id))
    ).one_or_none()
    if link is None:
        raise UnknownUser("unknown user id; resolve the identity again")
    return identity_digest(link.issuer, link.subject), ctx.user_id


def _audit_detail(row: AccessRevocation, reason: str) -> dict[str, object]:
    """What the audit row of a recorded revocation says."""
    detail: dict[str, object] = {
        "revocation": row.id,
        "scope": "tenant" if row.identity is None else "identity",
        "requested_by": row.requested_by,
        "revoked_before": row.revoked_before.isoformat(),
    }
    if reason:
        detail["reason"] = reason
    return detail


class Access:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def revoke(self, ctx: CallContext, request: RevocationRequest) -> RevocationRecord:
        """Record a revocation (and its audit row); the caller's own when no identity is named."""
        _check_request(request)
        now = utcnow()
        before = request.revoked_before or now
        if before > now + MAX_AHEAD:
            raise InvalidArgument("revoked_before", "must not be in the future")
        async with self.store.transaction() as s:
            identity, user_id = await _identity(s, ctx, request)
            if s.get_bind().dialect.name == "postgresql":
                # Ids must commit in order: a reader past id N must never see N-1 appear later.
                await s.execute(text("LOCK TABLE access_revocations IN SHARE ROW EXCLUSIVE MODE"))
            row = AccessRevocation(
                identity=identity,
                revoked_before=before,
                recorded_at=now,
                requested_by=request.requested_by,
                correlation_id=ctx.correlation_id,
            )
            s.add(row)
            await s.flush()
            detail = _audit_detail(row, request.reason)
            self.store.audit(s, ctx, "access.revoke", user_id=user_id, detail=detail)
            return _record(row)

    async def list(
        self, ctx: CallContext, after_id: int, limit: int
    ) -> tuple[list[RevocationRecord], bool]:
        """Revocations with an id above ``after_id``, oldest first, and whether more remain."""
        if after_id < 0:
            raise InvalidArgument("after_id", "must not be negative")
        page = min(limit, MAX_PAGE) if limit > 0 else DEFAULT_PAGE
        async with self.store.reading() as s:
            rows = (
                await s.scalars(
                    select(AccessRevocation)
                    .where(AccessRevocation.id > after_id)
                    .order_by(AccessRevocation.id)
                    .limit(page + 1)
                )
            ).all()
        return [_record(r) for r in rows[:page]], len(rows) > page
