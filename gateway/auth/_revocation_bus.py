"""Revocations pushed between gateway replicas (and from ``stowage access``) through Redis.

Pub/sub delivers a message at most once and only to those listening at that
moment, so it is the fast path, not the record: the tenant's worker keeps every
revocation, and a listener catches up from the workers each time it
(re)subscribes. A message only ever adds a refusal, never lifts one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway._types import Revocation

log = logging.getLogger(__name__)

#: The channel every gateway of an installation listens on.
CHANNEL = "stowage:revocations"

OnRevocation = Callable[[str, Revocation], None]
OnSubscribed = Callable[[], Awaitable[None]]


def encode(tenant: str, revocation: Revocation) -> bytes:
    return json.dumps(
        {
            "tenant": tenant,
            "id": revocation.id,
            "identity": revocation.identity,
            "revoked_before": revocation.revoked_before,
        }
    ).encode()


def decode(raw: bytes | str) -> tuple[str, Revocation] | None:
    """The tenant and revocation in a message; None (logged) for anything malformed."""
    try:
        body: Any = json.loads(raw)
        tenant, identity = body["tenant"], body["identity"]
        revocation = Revocation(int(body["id"]), identity, float(body["revoked_before"]))
    except (ValueError, TypeError, KeyError) as e:
        log.warning("ignoring a malformed revocation message: %s", type(e).__name__)
        return None
    if not isinstance(tenant, str) or not (identity is None or isinstance(identity, str)):
        log.warning("ignoring a malformed revocation message")
        return None
    return tenant, revocation


class RedisRevocationBus:
    def __init__(self, url: str, channel: str = CHANNEL) -> None:
        self._url = url
        self._channel = channel
        self._redis = aioredis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)

    async def publish(self, tenant: str, revocation: Revocation) -> bool:
        """Tell every listening gateway; False (logged) when Redis cannot be reached."""
        try:
            await self._redis.publish(self._channel, encode(tenant, revocation))
        except RedisError as e:
            log.warning(
                "revocation not pushed through Redis (gateways catch up from workers): %s", e
            )
            return False
        return True

    async def listen(self, on_revocation: OnRevocation, on_subscribed: OnSubscribed) -> None:
        """Deliver messages until cancelled; after every (re)subscription, ``on_subscribed``."""
        backoff = 0.1
        while True:
            subscriber = aioredis.Redis.from_url(
                self._url, socket_connect_timeout=0.5, health_check_interval=5
            )
            try:
                async with subscriber.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self._channel)
                    log.info("listening for revocations", extra={"channel": self._channel})
                    backoff = 0.1
                    await on_subscribed()
                    while True:
                        message = await pubsub.get_message(timeout=1.0)
                        if message is None or message.get("type") != "message":
                            continue
                        decoded = decode(message["data"])
                        if decoded is not None:
                            on_revocation(*decoded)
            except (RedisError, OSError) as e:
                log.warning("revocation channel lost; subscribing again: %s", e)
            finally:
                with anyio.CancelScope(shield=True):
                    await subscriber.aclose()
            await anyio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def aclose(self) -> None:
        await self._redis.aclose()
