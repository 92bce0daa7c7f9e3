"""Which tokens were revoked: a per-tenant cache the gate consults on every request.

Each tenant's worker records revocations ("grants of this identity, or of
everyone, signed in at or before T are refused"); this service holds them per
tenant as ``identity digest → T`` plus one tenant-wide cut-off, so the check
on the request path is two dictionary lookups and a comparison, with no I/O.

What is compared with T is the token's sign-in time
(``Principal.signed_in_at``): its ``auth_time``, the time the user
authenticated for the grant, which a refresh keeps. So a token refreshed from
a grant made before the revocation is refused like the one it replaced; only
a new sign-in (a later ``auth_time``) gets back in. A token without
``auth_time`` is judged by its ``iat`` (a refresh then gets back in; see
``TokenVerifier`` for the warning and ``auth.requireAuthTime``).

How it stays right:

- **Start and cache miss.** The first request for a tenant reads all its
  revocations from the worker (paged, by id) before any token is judged, so
  a restarted gateway never forgets one. If the worker cannot be read, the
  tenant's standing is UNKNOWN (the gate then refuses tool calls, which need
  the worker anyway) and the read is tried again at most every
  ``retry_after`` seconds. A tool call asks again (``patient``) for up to
  ``read_seconds``: a worker coming up (a new pod, a restart) makes it wait
  rather than fail. Other requests never wait for a worker, and callers
  queued behind a read that fails take its outcome instead of trying again.
- **Every replica within seconds.** A revocation made through this gateway is
  applied here at once and pushed through Redis (when configured) to every
  other replica; a replica catches up from the workers after every
  (re)subscription, and every ``sync_interval`` seconds in any case, so a lost
  message (or a gateway without Redis) is late by at most that long.
- **Bounded.** At most ``max_entries`` identities per tenant. Past that, the
  oldest are folded into the tenant-wide cut-off: grants of anyone signed in
  before the newest folded time are refused (a sign-in again fixes it), and a
  revoked grant is never accepted again.

A token with neither ``auth_time`` nor ``iat`` (nor ``nbf``) cannot be shown to
be newer than a revocation: while one applies to its identity, it is refused.
"""

from __future__ import annotations

import enum
import logging
import math
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import anyio

from gateway._errors import WorkerError
from gateway._types import CorrelationId, Principal, Revocation, Tenant, TenantName, UserId
from gateway.forwarding._worker import Backoff, WorkerClient, WorkerPool

log = logging.getLogger(__name__)


class Standing(enum.Enum):
    """What the revocations say about one token."""

    GOOD = "good"
    REVOKED = "revoked"
    #: The tenant's revocations could not be read yet.
    UNKNOWN = "unknown"


class RevocationBus(Protocol):
    """Where revocations are pushed to the other replicas (Redis pub/sub)."""

    async def publish(self, tenant: str, revocation: Revocation) -> bool: ...


@dataclass
class _TenantRevocations:
    by_identity: dict[str, float] = field(default_factory=dict)
    #: Every grant signed in at or before this is refused (all-identity revocations, folds).
    floor: float = -math.inf
    last_id: int = 0
    loaded: bool = False
    failed_at: float = -math.inf
    #: Reads tried so far: a caller that waited for the lock while one failed takes its outcome.
    reads: int = 0
    lock: anyio.Lock = field(default_factory=anyio.Lock)


def _cid() -> CorrelationId:
    return CorrelationId(f"revocations-{uuid.uuid4().hex[:12]}")


class Revocations:
    def __init__(
        self,
        workers: WorkerPool,
        *,
        bus: RevocationBus | None = None,
        max_entries: int = 100_000,
        retry_after: float = 1.0,
        read_seconds: float = 5.0,
    ) -> None:
        self._workers = workers
        self._bus = bus
        self._max_entries = max_entries
        self._retry_after = retry_after
        self._read_seconds = read_seconds
        self._tenants: dict[str, _TenantRevocations] = {}

    # --- the request path -------------------------------------------------------

    async def standing(
        self, tenant: Tenant, principal: Principal, *, patient: bool = False
    ) -> Standing:
        """Whether ``principal``'s token was revoked; loads the tenant's revocations once.

        ``patient``: while they cannot be read, ask again for up to ``read_seconds``.
        """
        state = self._tenants.get(tenant.name)
        if state is None or not state.loaded:
            state = await (self._load_patiently(tenant) if patient else self._load(tenant))
            if state is None:
                return Standing.UNKNOWN
        # The later of the identity's own revocation and the tenant-wide one.
        cutoff = max(state.by_identity.get(principal.identity, state.floor), state.floor)
        if cutoff == -math.inf:
            return Standing.GOOD
        signed_in = principal.signed_in_at
        return Standing.REVOKED if signed_in is None or signed_in <= cutoff else Standing.GOOD

    # --- recording --------------------------------------------------------------

    async def revoke_own(
        self, worker: WorkerClient, user: UserId, cid: CorrelationId
    ) -> Revocation:
        """The calling user ends their own access: recorded by the worker, applied, pushed."""
        revocation = await worker.revoke_access(cid, user=user, requested_by="user")
        await self.record(worker.tenant, revocation)
        return revocation

    async def record(self, tenant: str, revocation: Revocation) -> None:
        """Apply a revocation the worker recorded here and push it to the other replicas."""
        self.pushed(tenant, revocation)
        if self._bus is not None:
            await self._bus.publish(tenant, revocation)

    def pushed(self, tenant: str, revocation: Revocation) -> None:
        """A revocation from another replica or the CLI (a tenant not read yet reads it later)."""
        state = self._tenants.get(tenant)
        if state is not None:
            self._apply(tenant, state, revocation)

    # --- catching up --------------------------------------------------------------

    async def sync(self, tenants: Mapping[TenantName, Tenant]) -> None:
        """Catch every loaded tenant up from its worker; forget tenants no longer served."""
        for name in [n for n in self._tenants if n not in tenants]:
            del self._tenants[name]
        for name, state in list(self._tenants.items()):
            tenant = tenants.get(TenantName(name))
            if tenant is None or not state.loaded:
                continue
            try:
                async with state.lock:
                    await self._catch_up(tenant, state)
            except WorkerError as e:
                log.warning(
                    "revocations not refreshed; keeping the known ones: %s",
                    e.message,
                    extra={"tenant": name},
                )

    async def _load_patiently(self, tenant: Tenant) -> _TenantRevocations | None:
        """:meth:`_load`, again after a jittered pause while ``read_seconds`` allow."""
        backoff = Backoff(time.monotonic() + self._read_seconds)
        while (state := await self._load(tenant, again=True)) is None:
            if not await backoff.pause():
                return None
        return state

    async def _load(self, tenant: Tenant, *, again: bool = False) -> _TenantRevocations | None:
        """The tenant's revocations, read once; None while they cannot be read.

        A read that failed less than ``retry_after`` ago is not tried again unless
        ``again``; one that failed while this caller waited for it never is.
        """
        state = self._tenants.setdefault(tenant.name, _TenantRevocations())
        reads = state.reads
        async with state.lock:
            if state.loaded:
                return state
            if state.reads != reads:
                return None
            if not again and time.monotonic() - state.failed_at < self._retry_after:
                return None
            state.reads += 1
            try:
                await self._catch_up(tenant, state)
            except WorkerError as e:
                state.failed_at = time.monotonic()
                log.warning(
                    "revocations cannot be read; tool calls wait for them: %s",
                    e.message,
                    extra={"tenant": tenant.name},
                )
                return None
            state.loaded = True
            log.info(
                "revocations loaded",
                extra={"tenant": tenant.name, "identities": len(state.by_identity)},
            )
            return state

    async def _catch_up(self, tenant: Tenant, state: _TenantRevocations) -> None:
        worker = self._workers.client(tenant.endpoint, tenant.name)
        more = True
        while more:
            page, more = await worker.list_revocations(_cid(), state.last_id)
            for revocation in page:
                self._apply(tenant.name, state, revocation)
                state.last_id = max(state.last_id, revocation.id)

    def _apply(self, tenant: str, state: _TenantRevocations, revocation: Revocation) -> None:
        before = revocation.revoked_before
        if revocation.identity is None:
            state.floor = max(state.floor, before)
            return
        if before > state.by_identity.get(revocation.identity, -math.inf):
            state.by_identity[revocation.identity] = before
        if len(state.by_identity) > self._max_entries:
            self._fold(tenant, state)

    def _fold(self, tenant: str, state: _TenantRevocations) -> None:
        """Fold the oldest tenth of the identities into the tenant-wide cut-off."""
        oldest = sorted(state.by_identity.items(), key=lambda item: item[1])
        folded = oldest[: max(1, len(oldest) // 10)]
        state.floor = max(state.floor, folded[-1][1])
        for identity, _ in folded:
            del state.by_identity[identity]
        log.warning(
            "more revoked identities than the cache holds; tokens issued before the cut-off "
            "are refused for everyone",
            extra={"tenant": tenant, "cutoff": state.floor, "folded": len(folded)},
        )
