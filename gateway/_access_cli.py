"""``stowage access revoke|list``: an operator ends access to a tenant's app.

Talks to the tenant's worker (which records the revocation and audits it) and,
with ``--redis-url`` (and ``STOWAGE_REDIS_PASSWORD``, as the gateway reads
it), pushes it to every gateway at once; gateways without
Redis, or that missed the message, catch up from the worker within their
``--revocation-sync-interval``. Exit 0: done; 1: the worker refused or could
not be reached (the reason on stderr); 2: bad arguments.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gateway._settings import with_password
from stowage.revocation import OPERATOR
from stowage.runtime import config
from stowage.runtime.config import Setting


@dataclass(frozen=True)
class AccessSettings:
    """Where ``stowage access`` finds the worker (and Redis); :data:`SETTINGS` documents each."""

    worker: str
    timeout: float = 10.0
    redis_url: str | None = None
    redis_password: str = field(default="", repr=False)

    @property
    def redis(self) -> str | None:
        """The Redis URL, with ``STOWAGE_REDIS_PASSWORD`` in it as the gateway puts it."""
        return with_password(self.redis_url, self.redis_password) if self.redis_url else None


#: Every ``stowage access`` setting; ``list`` takes all but Redis's.
SETTINGS: tuple[Setting, ...] = (
    Setting(
        "worker", "STOWAGE_ACCESS_WORKER", "the tenant worker's gRPC address", metavar="HOST:PORT"
    ),
    Setting("timeout", "STOWAGE_ACCESS_TIMEOUT", "seconds to wait for the worker", config.number),
    Setting(
        "redis_url",
        "STOWAGE_REDIS_URL",
        "push the revocation to the gateways at once through Redis (without it they catch "
        "up within their revocation sync interval)",
    ),
    Setting(
        "redis_password",
        "STOWAGE_REDIS_PASSWORD",
        "put into the Redis URL (percent-encoded) when that URL has no password",
        env_only=True,
    ),
)
_LIST_SETTINGS = config.named(SETTINGS, "worker", "timeout")


def register(subparsers: config.Subparsers) -> None:
    commands = config.add_group(subparsers, "access", help="revoke access to a tenant's app")
    revoke = config.add_command(commands, "revoke", _revoke, SETTINGS, AccessSettings)
    revoke.add_argument("--tenant", required=True, help="the tenant's name")
    revoke.add_argument("--issuer", help="the token issuer (iss), as in the tenant's spec")
    revoke.add_argument("--subject", help="the user's subject (sub) at that issuer")
    revoke.add_argument("--before", help="ISO 8601 time with a zone, or 'now' (default)")
    revoke.add_argument(
        "--all-before", metavar="TIME", help="every token of the tenant (ISO 8601, or 'now')"
    )
    revoke.add_argument("--reason", default="", help="recorded in the audit trail")
    listing = config.add_command(commands, "list", _list, _LIST_SETTINGS, AccessSettings)
    listing.add_argument("--tenant", required=True, help="the tenant's name")


def parse_time(value: str) -> datetime:
    """``now`` or an ISO 8601 time that names its zone."""
    if value.strip().lower() == "now":
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as e:
        raise ValueError(f"{value!r} is not an ISO 8601 time") from e
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone; add Z or an offset such as +01:00")
    return parsed.astimezone(UTC)


def _fail(message: str, code: int) -> int:
    print(f"stowage access: {message}", file=sys.stderr)
    return code


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def _revoke(args: argparse.Namespace) -> int:
    """Refuse one identity's tokens, or every token of the tenant, issued before a time.

    Refuse, at every gateway, the tokens of one identity (--issuer and --subject)
    issued at or before --before (default: now), or every token of the tenant
    issued at or before --all-before (a signing key compromise). Tokens issued
    later (a new sign-in) are accepted.
    """
    import anyio

    settings = config.from_args(AccessSettings, SETTINGS, args, os.environ)
    everyone = args.all_before is not None
    if everyone == bool(args.issuer or args.subject) or (
        not everyone and not (args.issuer and args.subject)
    ):
        return _fail("give either --issuer and --subject, or --all-before", 2)
    if everyone and args.before:
        return _fail("--before goes with --issuer and --subject; use --all-before alone", 2)
    try:
        when = parse_time(args.all_before if everyone else (args.before or "now"))
    except ValueError as e:
        return _fail(str(e), 2)
    return anyio.run(_revoke_async, settings, args, everyone, when)


async def _revoke_async(
    settings: AccessSettings, args: argparse.Namespace, everyone: bool, when: datetime
) -> int:
    from gateway._errors import WorkerError
    from gateway._types import CorrelationId
    from gateway.auth._revocation_bus import RedisRevocationBus
    from gateway.forwarding._worker import WorkerClient

    worker = WorkerClient(settings.worker, args.tenant, timeout=settings.timeout)
    cid = CorrelationId(f"access-{uuid.uuid4().hex[:12]}")
    try:
        revocation = await worker.revoke_access(
            cid,
            issuer=args.issuer or "",
            subject=args.subject or "",
            all_identities=everyone,
            revoked_before=when,
            requested_by=OPERATOR,
            reason=args.reason,
        )
    except WorkerError as e:
        return _fail(f"the worker refused: {e.message}", 1)
    finally:
        await worker.close()
    whose = (
        "every token of the tenant" if everyone else f"tokens of {args.subject} at {args.issuer}"
    )
    print(
        f"revoked: {whose} signed in at or before {_iso(revocation.revoked_before)} "
        f"are refused (revocation {revocation.id}, correlation id {cid})"
    )
    if settings.redis:
        bus = RedisRevocationBus(settings.redis)
        try:
            pushed = await bus.publish(args.tenant, revocation)
        finally:
            await bus.aclose()
        if pushed:
            print("pushed to the gateways through Redis")
            return 0
        print("not pushed (Redis unreachable)", file=sys.stderr)
    print("gateways apply it within their revocation sync interval (default 30 s)")
    return 0


def _list(args: argparse.Namespace) -> int:
    """The tenant's revocations, oldest first."""
    import anyio

    settings = config.from_args(AccessSettings, _LIST_SETTINGS, args, os.environ)
    return anyio.run(_list_async, settings, args.tenant)


async def _list_async(settings: AccessSettings, tenant: str) -> int:
    from gateway._errors import WorkerError
    from gateway._types import CorrelationId
    from gateway.forwarding._worker import WorkerClient

    worker = WorkerClient(settings.worker, tenant, timeout=settings.timeout)
    cid = CorrelationId(f"access-{uuid.uuid4().hex[:12]}")
    after, more = 0, True
    try:
        while more:
            page, more = await worker.list_revocations(cid, after, seconds=settings.timeout)
            for r in page:
                whose = "all identities" if r.identity is None else f"identity {r.identity[:16]}…"
                print(f"{r.id}\t{_iso(r.revoked_before)}\t{whose}")
                after = r.id
    except WorkerError as e:
        return _fail(f"the worker refused: {e.message}", 1)
    finally:
        await worker.close()
    return 0
