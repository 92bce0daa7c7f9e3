"""The tenant worker over gRPC: one ``grpc.aio`` channel per worker endpoint.

Every call carries a deadline, ``x-correlation-id`` and (for user calls) the
verified internal user id. Reads that fail with UNAVAILABLE are retried with
jittered backoff while the deadline allows; writes are never retried here
(a client may replay them with the same idempotency key). gRPC status codes
are translated into :mod:`gateway._errors` at this boundary; objects come back
as plain JSON-ready dicts.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, TypeVar, Unpack

import anyio
import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from gateway._errors import (
    Conflict,
    InvalidArgument,
    NotFound,
    PermanentError,
    QuotaExceeded,
    TemporaryError,
    UnknownUser,
    UnreadableData,
    WorkerError,
    WrongWorker,
)
from gateway._types import CorrelationId, Revocation, Tenant, UserId
from stowage.revocation import RevocationFields, RevocationRequest
from stowage.v1 import worker_pb2 as pb
from stowage.v1 import worker_pb2_grpc
from stowage.values import MAX_DEPTH, depth_over_limit
from stowage.wire import (
    CORRELATION_KEY,
    CURRENT_OBJECT_KEY,
    CURRENT_PREFERENCES_KEY,
    FIELD_KEY,
    INSTANCE_KEY,
    TENANT_KEY,
    USER_ID_KEY,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


_CHANNEL_OPTIONS = [
    # Come back quickly after a worker restart instead of gRPC's default of up to 2 minutes.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]


def _iso(ts: Timestamp) -> str:
    return datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, UTC).isoformat()


#: Where :func:`object_dict` and :func:`preferences_dict` put stored data that cannot
#: travel as JSON: ``{"problem": …, "data_json": <the stored text>}``, with ``data`` None.
UNREADABLE = "unreadable"


def _stored(raw: bytes) -> tuple[Any, dict[str, str] | None]:
    """Stored JSON as a value, or None and why not (with the text) when it cannot travel.

    The worker refuses such data now (:mod:`stowage.values`); data stored before
    that rule may still nest too deep for the serialisers on the way out. One
    such object must not fail a whole list or a user's export, so it comes back
    as its text, which any client can read.
    """
    text = raw.decode("utf-8", errors="replace")
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as e:
        return None, {"problem": f"cannot be read as JSON here ({e})", "data_json": text}
    if depth_over_limit(value):
        problem = f"nests deeper than {MAX_DEPTH} levels of objects and arrays"
        return None, {"problem": problem, "data_json": text}
    return value, None


def object_dict(o: pb.StoredObject) -> dict[str, Any]:
    data, unreadable = _stored(o.data_json) if o.data_json else (None, None)
    out = {
        "collection": o.collection,
        "id": o.id,
        "version": o.version,
        "schema_version": o.schema_version,
        "data": data,
        "created_at": _iso(o.created_at),
        "updated_at": _iso(o.updated_at),
        "expires_at": _iso(o.expires_at) if o.HasField("expires_at") else None,
    }
    if unreadable is not None:
        out[UNREADABLE] = unreadable
    return out


def preferences_dict(p: pb.Preferences) -> dict[str, Any]:
    data, unreadable = _stored(p.data_json) if p.data_json else ({}, None)
    out = {
        "preferences": data,
        "version": p.version,
        "updated_at": _iso(p.updated_at) if p.HasField("updated_at") else None,
    }
    if unreadable is not None:
        out[UNREADABLE] = unreadable
    return out


def _readable(found: dict[str, Any], what: str) -> dict[str, Any]:
    """``found`` (an object or preferences), or UnreadableData saying why it cannot be sent."""
    unreadable = found.get(UNREADABLE)
    if unreadable is not None:
        raise UnreadableData(f"{what} {unreadable['problem']}; my_data_export gives its text")
    return found


def _unreadable_entry(o: dict[str, Any]) -> dict[str, Any]:
    return {
        "collection": o["collection"],
        "id": o["id"],
        "version": o["version"],
        **o[UNREADABLE],
    }


def _revocation(r: pb.Revocation) -> Revocation:
    before = r.revoked_before.seconds + r.revoked_before.nanos / 1e9
    return Revocation(r.id, None if r.all_identities else r.identity, before)


def _translate(error: grpc.aio.AioRpcError) -> WorkerError:
    translated = _outcome(error)
    translated.grpc_code = error.code().name
    return translated


def _field(error: grpc.aio.AioRpcError) -> str | None:
    """The refused field's path, from the answer's trailing metadata (``stowage.wire``)."""
    for key, value in error.trailing_metadata() or ():
        if key == FIELD_KEY and isinstance(value, bytes):
            return value.decode("utf-8", errors="replace")
    return None


def _outcome(error: grpc.aio.AioRpcError) -> WorkerError:
    code, details = error.code(), error.details() or ""
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(details or "not found")
    if code == grpc.StatusCode.ABORTED:
        trailing = {k: v for k, v in (error.trailing_metadata() or ())}
        current: dict[str, Any] | None = None
        if isinstance(raw := trailing.get(CURRENT_OBJECT_KEY), bytes):
            current = object_dict(pb.StoredObject.FromString(raw))
        elif isinstance(raw := trailing.get(CURRENT_PREFERENCES_KEY), bytes):
            current = preferences_dict(pb.Preferences.FromString(raw))
        return Conflict(details or "version conflict", current)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument(details, _field(error))
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return QuotaExceeded(details or "quota exceeded", _field(error))
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return UnknownUser(details or "unknown user")
    if code == grpc.StatusCode.PERMISSION_DENIED:
        # Another tenant's worker, or another run of this tenant's (one a killed platform
        # left on the port): it read nothing. Its details stay in the log, not the answer.
        log.error(
            "a worker refused a call as not its own (check the tenant's endpoint): %s", details
        )
        return WrongWorker(
            "the tenant's storage cannot be reached: its endpoint leads to a worker that is "
            "not this tenant's, which refused the call",
            delay=5.0,
        )
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return TemporaryError(f"the tenant worker is unavailable ({code.name})", delay=1.0)
    return PermanentError(f"the tenant worker failed ({code.name})")


def _export_preferences(out: dict[str, Any], found: dict[str, Any]) -> None:
    if (unreadable := found.pop(UNREADABLE, None)) is not None:
        out["unreadable_preferences"] = unreadable
    else:
        out["preferences"] = found


def _export_object(out: dict[str, Any], found: dict[str, Any]) -> None:
    if UNREADABLE in found:
        out.setdefault("unreadable_objects", []).append(_unreadable_entry(found))
    else:
        out["objects"].append(found)


class WorkerClient:
    """Calls to one worker. Methods return plain dicts or raise WorkerError."""

    def __init__(
        self, endpoint: str, tenant: str, *, instance: str | None = None, timeout: float = 10.0
    ) -> None:
        self.endpoint = endpoint
        self.tenant = tenant
        #: The worker instance the calls are for; None: any worker of the tenant.
        self.instance = instance
        self.timeout = timeout
        self._channel = grpc.aio.insecure_channel(endpoint, options=_CHANNEL_OPTIONS)
        self._stub = worker_pb2_grpc.TenantWorkerStub(self._channel)  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        await self._channel.close()

    def _metadata(self, cid: CorrelationId, user: UserId | None) -> list[tuple[str, str]]:
        md: list[tuple[str, str]] = [(TENANT_KEY, self.tenant), (CORRELATION_KEY, cid)]
        if self.instance is not None:
            md.append((INSTANCE_KEY, self.instance))
        if user is not None:
            md.append((USER_ID_KEY, user))
        return md

    async def _call(self, attempt: Callable[[float], Awaitable[T]], *, retry: bool) -> T:
        """Run ``attempt(timeout)``; on UNAVAILABLE retry reads until the deadline."""
        deadline = time.monotonic() + self.timeout
        backoff = 0.05
        while True:
            remaining = deadline - time.monotonic()
            try:
                return await attempt(max(remaining, 0.001))
            except grpc.aio.AioRpcError as e:
                translated = _translate(e)
                pause = random.uniform(0, backoff)  # full jitter
                if (
                    retry
                    and e.code() == grpc.StatusCode.UNAVAILABLE
                    and time.monotonic() + pause < deadline - 0.05
                ):
                    await anyio.sleep(pause)
                    backoff = min(backoff * 2, 1.0)
                    continue
                raise translated from e

    async def resolve_user(self, issuer: str, subject: str, cid: CorrelationId) -> UserId:
        request = pb.ResolveUserRequest(issuer=issuer, subject=subject)

        async def attempt(remaining: float) -> pb.ResolveUserResponse:
            reply: pb.ResolveUserResponse = await self._stub.ResolveUser(
                request, timeout=remaining, metadata=self._metadata(cid, None)
            )
            return reply

        reply = await self._call(attempt, retry=True)
        return UserId(reply.user_id)

    async def _unary(
        self, method: str, request: Any, user: UserId, cid: CorrelationId, *, read: bool
    ) -> Any:
        rpc = getattr(self._stub, method)
        md = self._metadata(cid, user)

        async def attempt(remaining: float) -> Any:
            return await rpc(request, timeout=remaining, metadata=md)

        return await self._call(attempt, retry=read)

    async def put_object(
        self,
        user: UserId,
        cid: CorrelationId,
        *,
        collection: str,
        object_id: str,
        data: Any,
        expected_version: int | None,
        idempotency_key: str,
        ttl_seconds: int,
    ) -> dict[str, Any]:
        request = pb.PutObjectRequest(
            collection=collection,
            id=object_id,
            data_json=json.dumps(data, separators=(",", ":")).encode(),
            idempotency_key=idempotency_key,
            ttl_seconds=ttl_seconds,
        )
        if expected_version is not None:
            request.expected_version = expected_version
        reply = await self._unary("PutObject", request, user, cid, read=False)
        return {
            "object": object_dict(reply.object),
            "created": reply.created,
            "replayed": reply.replayed,
        }

    async def get_object(
        self, user: UserId, cid: CorrelationId, *, collection: str, object_id: str
    ) -> dict[str, Any]:
        request = pb.GetObjectRequest(collection=collection, id=object_id)
        reply = await self._unary("GetObject", request, user, cid, read=True)
        return {"object": _readable(object_dict(reply.object), f"{collection}/{object_id}")}

    async def list_objects(
        self, user: UserId, cid: CorrelationId, *, collection: str, page_size: int, cursor: str
    ) -> dict[str, Any]:
        request = pb.ListObjectsRequest(collection=collection, page_size=page_size, cursor=cursor)
        reply = await self._unary("ListObjects", request, user, cid, read=True)
        found = [object_dict(o) for o in reply.objects]
        page: dict[str, Any] = {
            "objects": [o for o in found if UNREADABLE not in o],
            "next_cursor": reply.next_cursor or None,
        }
        if unreadable := [_unreadable_entry(o) for o in found if UNREADABLE in o]:
            page["unreadable"] = unreadable
        return page

    async def delete_object(
        self,
        user: UserId,
        cid: CorrelationId,
        *,
        collection: str,
        object_id: str,
        expected_version: int | None,
        idempotency_key: str,
    ) -> dict[str, Any]:
        request = pb.DeleteObjectRequest(
            collection=collection, id=object_id, idempotency_key=idempotency_key
        )
        if expected_version is not None:
            request.expected_version = expected_version
        reply = await self._unary("DeleteObject", request, user, cid, read=False)
        return {
            "collection": reply.collection,
            "id": reply.id,
            "version": reply.version,
            "replayed": reply.replayed,
        }

    async def get_preferences(self, user: UserId, cid: CorrelationId) -> dict[str, Any]:
        reply = await self._unary(
            "GetPreferences", pb.GetPreferencesRequest(), user, cid, read=True
        )
        return _readable(preferences_dict(reply), "the stored preferences")

    async def get_usage(self, user: UserId, cid: CorrelationId) -> dict[str, Any]:
        reply = await self._unary("GetUsage", pb.GetUsageRequest(), user, cid, read=True)
        return {
            "objects": reply.objects,
            "bytes": reply.bytes,
            "collections": [
                {"collection": c.collection, "objects": c.objects, "bytes": c.bytes}
                for c in reply.collections
            ],
            "limits": {
                "max_object_bytes": reply.max_object_bytes,
                **({"max_objects": reply.max_objects} if reply.HasField("max_objects") else {}),
                **({"max_bytes": reply.max_bytes} if reply.HasField("max_bytes") else {}),
            },
        }

    async def update_preferences(
        self,
        user: UserId,
        cid: CorrelationId,
        *,
        patch: Mapping[str, Any],
        expected_version: int | None,
        idempotency_key: str,
    ) -> dict[str, Any]:
        request = pb.UpdatePreferencesRequest(
            merge_patch_json=json.dumps(patch).encode(), idempotency_key=idempotency_key
        )
        if expected_version is not None:
            request.expected_version = expected_version
        reply = await self._unary("UpdatePreferences", request, user, cid, read=False)
        return _readable(preferences_dict(reply), "the stored preferences")

    async def export_user_data(self, user: UserId, cid: CorrelationId) -> dict[str, Any]:
        md = self._metadata(cid, user)

        async def attempt(remaining: float) -> dict[str, Any]:
            out: dict[str, Any] = {
                "user_id": user,
                "identities": [],
                "preferences": None,
                "objects": [],
            }
            call = self._stub.ExportUserData(
                pb.ExportUserDataRequest(), timeout=remaining, metadata=md
            )
            async for record in call:
                kind = record.WhichOneof("record")
                if kind == "user_id":
                    out["user_id"] = record.user_id
                elif kind == "identity":
                    out["identities"].append(
                        {
                            "issuer": record.identity.issuer,
                            "subject": record.identity.subject,
                            "created_at": _iso(record.identity.created_at),
                        }
                    )
                elif kind == "preferences":
                    _export_preferences(out, preferences_dict(record.preferences))
                elif kind == "object":
                    _export_object(out, object_dict(record.object))
            return out

        return await self._call(attempt, retry=True)

    async def erase_user_data(self, user: UserId, cid: CorrelationId) -> dict[str, Any]:
        reply = await self._unary(
            "EraseUserData", pb.EraseUserDataRequest(confirm=True), user, cid, read=False
        )
        return {
            "objects_deleted": reply.objects_deleted,
            "preferences_deleted": reply.preferences_deleted,
            "identities_deleted": reply.identities_deleted,
        }

    async def revoke_access(
        self, cid: CorrelationId, *, user: UserId | None = None, **fields: Unpack[RevocationFields]
    ) -> Revocation:
        """Record a revocation: ``user``'s own, a named identity's, or everyone's.

        ``fields`` are a :class:`stowage.revocation.RevocationRequest`'s.
        """
        request = pb.RevokeAccessRequest(**asdict(RevocationRequest(**fields)))
        md = self._metadata(cid, user)

        async def attempt(remaining: float) -> pb.Revocation:
            reply: pb.Revocation = await self._stub.RevokeAccess(
                request, timeout=remaining, metadata=md
            )
            return reply

        return _revocation(await self._call(attempt, retry=False))

    async def list_revocations(
        self, cid: CorrelationId, after_id: int, *, limit: int = 0
    ) -> tuple[list[Revocation], bool]:
        """Revocations after ``after_id`` (oldest first) and whether more remain.

        One attempt, no retries: a gateway that cannot read them answers for
        itself (see :mod:`gateway.auth._revocations`) rather than wait.
        """
        request = pb.ListRevocationsRequest(after_id=after_id, limit=limit)
        reply: pb.ListRevocationsResponse
        try:
            reply = await self._stub.ListRevocations(
                request, timeout=self.timeout, metadata=self._metadata(cid, None)
            )
        except grpc.aio.AioRpcError as e:
            raise _translate(e) from e
        return [_revocation(r) for r in reply.revocations], reply.more


class WorkerPool:
    """One client (and channel) per tenant and endpoint, created on first use.

    Each client's calls name the worker instance the tenant's entry names
    (:meth:`expect`), so any other worker refuses them.
    """

    def __init__(self, *, timeout: float = 10.0) -> None:
        self._timeout = timeout
        self._clients: dict[tuple[str, str], WorkerClient] = {}
        #: The instance each (endpoint, tenant) must reach, where its entry names one.
        self._instances: dict[tuple[str, str], str] = {}

    def expect(self, tenants: Iterable[Tenant]) -> None:
        """From now on, call each tenant's worker as the instance its entry names.

        The clients are kept (a call under way keeps its channel and the instance
        it was sent for); their next calls name the new instance.
        """
        self._instances = {
            (t.endpoint, t.name): t.instance for t in tenants if t.instance is not None
        }
        for key, client in self._clients.items():
            client.instance = self._instances.get(key)

    def client(self, endpoint: str, tenant: str) -> WorkerClient:
        found = self._clients.get((endpoint, tenant))
        if found is None:
            instance = self._instances.get((endpoint, tenant))
            found = WorkerClient(endpoint, tenant, instance=instance, timeout=self._timeout)
            self._clients[(endpoint, tenant)] = found
        return found

    async def retain(self, endpoints: set[str]) -> None:
        """Close the channels of workers no tenant points at any more."""
        for key in list(self._clients):
            if key[0] not in endpoints:
                await self._clients.pop(key).close()

    async def close(self) -> None:
        await self.retain(set())
