"""The tenant worker over gRPC: one ``grpc.aio`` channel per worker endpoint, its
unary calls on one long-lived stream (:mod:`gateway.forwarding._stream`).

Every call carries a deadline, ``x-correlation-id`` and (for user calls) the
verified internal user id. Reads that fail with UNAVAILABLE are retried with
jittered backoff while the deadline allows; writes are never retried here
(a client may replay them with the same idempotency key). gRPC status codes
are translated into :mod:`gateway._errors` at this boundary; objects come back
as plain JSON-ready dicts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import asdict, dataclass
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
    PermissionDenied,
    QuotaExceeded,
    StoreUnavailable,
    TemporaryError,
    UnknownUser,
    UnreadableData,
    WorkerError,
    WrongWorker,
)
from gateway._types import CorrelationId, Revocation, Tenant, UserId
from gateway.forwarding._stream import CallStream, StreamedChannel
from stowage.revocation import RevocationFields, RevocationRequest
from stowage.tracing.rpc import traced_stub
from stowage.v1 import worker_pb2 as pb
from stowage.v1 import worker_pb2_grpc
from stowage.values import MAX_DEPTH, depth_over_limit
from stowage.wire import (
    CORRELATION_KEY,
    CURRENT_OBJECT_KEY,
    CURRENT_PREFERENCES_KEY,
    CURRENT_SPACE_OBJECT_KEY,
    FIELD_KEY,
    INSTANCE_KEY,
    ROLE_NEEDED_KEY,
    TENANT_KEY,
    UNAVAILABLE_STORE_KEY,
    USER_ID_KEY,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


#: The worker's gRPC service, as its spans name it.
_SERVICE = pb.DESCRIPTOR.services_by_name["TenantWorker"].full_name
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
    if o.files:
        # The files the version names that still exist (the surface adds their links); an
        # answer that did not look them up (a conflict's current object) has none.
        out["files"] = [_linked_file(f) for f in o.files]
    if unreadable is not None:
        out[UNREADABLE] = unreadable
    return out


def _linked_file(f: pb.FileInfo) -> dict[str, Any]:
    return {
        "id": f.id,
        "name": f.name,
        "content_type": f.sniffed_type or f.declared_type,
        "size": f.size_bytes,
        "status": "ready" if f.version > 0 else "awaiting_upload",
    }


def exported(found: dict[str, Any], o: pb.StoredObject) -> dict[str, Any]:
    """An object as the export holds it: the ids of the files its version names."""
    found.pop("files", None)
    if o.file_ids:
        found["file_ids"] = list(o.file_ids)
    return found


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


def _store_unavailable(error: grpc.aio.AioRpcError) -> StoreUnavailable | None:
    """Which of the tenant's stores failed, from an UNAVAILABLE answer's trailing metadata."""
    for key, value in error.trailing_metadata() or ():
        if key == UNAVAILABLE_STORE_KEY and isinstance(value, bytes):
            store, _, how = value.decode("utf-8", errors="replace").partition(" ")
            return StoreUnavailable(store, how == "refused", error.details() or "")
    return None


def _role_needed(error: grpc.aio.AioRpcError) -> str | None:
    """The role a refused action in a space needs, from the trailing metadata."""
    for key, value in error.trailing_metadata() or ():
        if key == ROLE_NEEDED_KEY and isinstance(value, bytes):
            return value.decode("utf-8", errors="replace")
    return None


def _author(a: pb.Author) -> dict[str, str]:
    return {"member": a.member, "name": a.name}


def space_object_dict(o: pb.SpaceObject) -> dict[str, Any]:
    """An object in a space as tools return it: the object, its space, who wrote it."""
    return {
        **object_dict(o.object),
        "space": o.space,
        "created_by": _author(o.created_by),
        "updated_by": _author(o.updated_by),
        **({"space_name": o.space_name} if o.space_name else {}),
    }


def _member(m: pb.Member) -> dict[str, Any]:
    return {
        "member": m.member,
        "name": m.name,
        "role": m.role,
        "joined_at": _iso(m.joined_at),
        "you": m.you,
    }


def _space(s: pb.Space) -> dict[str, Any]:
    return {
        "id": s.id,
        "name": s.name,
        "kind": s.kind,
        "role": s.role,
        "members": s.members,
        "objects": s.objects,
        "bytes": s.bytes,
        "created_at": _iso(s.created_at),
        "last_change": s.last_change,
    }


def _outcome(error: grpc.aio.AioRpcError) -> WorkerError:
    code, details = error.code(), error.details() or ""
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(details or "not found")
    if code == grpc.StatusCode.ABORTED:
        trailing = {k: v for k, v in (error.trailing_metadata() or ())}
        current: dict[str, Any] | None = None
        if isinstance(raw := trailing.get(CURRENT_SPACE_OBJECT_KEY), bytes):
            shared = space_object_dict(pb.SpaceObject.FromString(raw))
            return Conflict(
                details or "version conflict",
                shared,
                changed_by=shared["updated_by"],
                changed_at=shared["updated_at"],
            )
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
    if code == grpc.StatusCode.PERMISSION_DENIED and (role := _role_needed(error)) is not None:
        return PermissionDenied(details or f"needs the {role} role", role)
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
    if code == grpc.StatusCode.UNAVAILABLE and (store := _store_unavailable(error)) is not None:
        return store
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return TemporaryError(f"the tenant worker is unavailable ({code.name})", delay=1.0)
    return PermanentError(f"the tenant worker failed ({code.name})")


def file_dict(f: pb.FileInfo) -> dict[str, Any]:
    """A file's metadata as tools return it (``content_type``: what its bytes show, else
    what was declared)."""
    return {
        "id": f.id,
        "name": f.name,
        "content_type": f.sniffed_type or f.declared_type,
        "declared_type": f.declared_type,
        "size": f.size_bytes,
        "sha256": f.sha256 or None,
        "version": f.version,
        "status": "ready" if f.version > 0 else "awaiting_upload",
        "created_at": _iso(f.created_at),
        "updated_at": _iso(f.updated_at),
        "expires_at": _iso(f.expires_at) if f.HasField("expires_at") else None,
        "space": f.space or None,
        "created_by": _author(f.created_by) if f.HasField("created_by") else None,
        "updated_by": _author(f.updated_by) if f.HasField("updated_by") else None,
    }


#: The largest piece of a file one upload message carries.
_UPLOAD_PIECE = 256 * 1024


@dataclass
class Download:
    """A download under way: the file, the part of it that follows, and those bytes.

    ``body`` is read once; :meth:`close` ends the call when it is not read to the end.
    """

    file: dict[str, Any]
    start: int
    length: int
    satisfiable: bool
    body: AsyncIterator[bytes]
    _call: Any

    def close(self) -> None:
        self._call.cancel()


@dataclass(frozen=True)
class ExportedFile:
    """A file of an export: exactly ``file["size"]`` bytes of this version follow it."""

    file: dict[str, Any]


@dataclass(frozen=True)
class SkippedFile:
    """A file an export leaves out (no bytes follow), and why (``awaiting_upload``, ``deleted``)."""

    file: dict[str, Any]
    reason: str


#: What a user's file export streams: a file, its bytes a piece at a time, or a skipped file.
ExportPart = ExportedFile | SkippedFile | bytes


@dataclass
class FileExport:
    """A user's files streaming: ``parts`` is read once; :meth:`close` ends the call when
    it is not read to the end."""

    parts: AsyncIterator[ExportPart]
    _call: Any

    def close(self) -> None:
        self._call.cancel()


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


class Backoff:
    """Pauses between attempts: full jitter, the ceiling doubling from 50 ms to 1 s."""

    def __init__(self, deadline: float) -> None:
        self._deadline = deadline
        self._ceiling = 0.05

    async def pause(self) -> bool:
        """Sleep one pause and say True; False, without sleeping, when it would end at or
        past the deadline (``time.monotonic()``)."""
        pause = random.uniform(0, self._ceiling)
        if time.monotonic() + pause >= self._deadline:
            return False
        await anyio.sleep(pause)
        self._ceiling = min(self._ceiling * 2, 1.0)
        return True


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
        # The unary methods go on one long-lived stream per channel (``_stream``).
        self._calls = CallStream(self._channel, [(TENANT_KEY, tenant)])
        stub = worker_pb2_grpc.TenantWorkerStub(  # type: ignore[no-untyped-call]
            StreamedChannel(self._channel, self._calls)
        )
        self._stub = traced_stub(stub, _SERVICE)

    async def close(self) -> None:
        """Close the channel once the calls under way have ended (within their timeout):
        a call cut off here would answer CANCELLED, which says nothing of whether it
        was applied."""
        await self._calls.close()
        await self._channel.close(grace=self.timeout)

    def _metadata(self, cid: CorrelationId, user: UserId | None) -> list[tuple[str, str]]:
        md: list[tuple[str, str]] = [(TENANT_KEY, self.tenant), (CORRELATION_KEY, cid)]
        if self.instance is not None:
            md.append((INSTANCE_KEY, self.instance))
        if user is not None:
            md.append((USER_ID_KEY, user))
        return md

    async def _call(
        self,
        attempt: Callable[[float], Awaitable[T]],
        *,
        retry: bool,
        seconds: float | None = None,
    ) -> T:
        """Run ``attempt(timeout)``; on UNAVAILABLE retry reads until the deadline.

        The deadline is ``seconds`` from now, else the client's timeout.
        """
        deadline = time.monotonic() + (self.timeout if seconds is None else seconds)
        backoff: Backoff | None = None  # made on a first failure: none on the usual path
        while True:
            remaining = deadline - time.monotonic()
            try:
                return await attempt(max(remaining, 0.001))
            except grpc.aio.AioRpcError as e:
                translated = _translate(e)
                if retry and e.code() == grpc.StatusCode.UNAVAILABLE:
                    backoff = backoff or Backoff(deadline - 0.05)
                    if await backoff.pause():
                        continue
                raise translated from e

    async def resolve_user(
        self,
        issuer: str,
        subject: str,
        cid: CorrelationId,
        *,
        claims: Mapping[str, str] | None = None,
    ) -> UserId:
        """The internal user id; ``claims`` (name, email, org) as the tenant configures them."""
        request = pb.ResolveUserRequest(issuer=issuer, subject=subject)
        if claims is not None:
            request.claims.CopyFrom(pb.Claims(**claims))

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
        files: Sequence[str] = (),
    ) -> dict[str, Any]:
        request = pb.PutObjectRequest(
            collection=collection,
            id=object_id,
            data_json=json.dumps(data, separators=(",", ":")).encode(),
            idempotency_key=idempotency_key,
            ttl_seconds=ttl_seconds,
            files=files,
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
                **({"max_file_bytes": reply.max_file_bytes} if reply.max_file_bytes else {}),
            },
            **(
                {"files": {"files": reply.files, "bytes": reply.file_bytes}}
                if reply.max_file_bytes
                else {}
            ),
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
                    _export_object(out, exported(object_dict(record.object), record.object))
                elif kind == "space_object":
                    shared = exported(
                        {**space_object_dict(record.space_object), "shared": True},
                        record.space_object.object,
                    )
                    _export_object(out, shared)
                elif kind == "file":
                    out.setdefault("files", []).append(file_dict(record.file))
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
            "files_deleted": reply.files_deleted,
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
        self, cid: CorrelationId, after_id: int, *, limit: int = 0, seconds: float | None = None
    ) -> tuple[list[Revocation], bool]:
        """Revocations after ``after_id`` (oldest first) and whether more remain.

        One attempt, unless ``seconds`` are given to ask a worker that is UNAVAILABLE
        again: the gateway decides itself how long a request waits for them (see
        :mod:`gateway.auth._revocations`).
        """
        request = pb.ListRevocationsRequest(after_id=after_id, limit=limit)
        md = self._metadata(cid, None)

        async def attempt(remaining: float) -> pb.ListRevocationsResponse:
            reply: pb.ListRevocationsResponse = await self._stub.ListRevocations(
                request, timeout=remaining, metadata=md
            )
            return reply

        reply = await self._call(attempt, retry=seconds is not None, seconds=seconds)
        return [_revocation(r) for r in reply.revocations], reply.more

    # --- shared spaces ---------------------------------------------------------------

    async def create_space(self, user: UserId, cid: CorrelationId, *, name: str) -> dict[str, Any]:
        reply = await self._unary(
            "CreateSpace", pb.CreateSpaceRequest(name=name), user, cid, read=False
        )
        return {"space": _space(reply)}

    async def list_spaces(self, user: UserId, cid: CorrelationId) -> dict[str, Any]:
        reply = await self._unary("ListSpaces", pb.ListSpacesRequest(), user, cid, read=True)
        return {"spaces": [_space(s) for s in reply.spaces]}

    async def get_space(self, user: UserId, cid: CorrelationId, *, space: str) -> dict[str, Any]:
        reply = await self._unary("GetSpace", pb.GetSpaceRequest(space=space), user, cid, read=True)
        return {
            "space": _space(reply.space),
            "members": [_member(m) for m in reply.members],
            "pending_invites": reply.pending_invites,
        }

    async def invite_member(
        self, user: UserId, cid: CorrelationId, *, space: str, invitee: str, email: str, role: str
    ) -> dict[str, Any]:
        request = pb.InviteMemberRequest(space=space, user=invitee, email=email, role=role)
        reply = await self._unary("InviteMember", request, user, cid, read=False)
        return {
            "member": _member(reply.member) if reply.HasField("member") else None,
            "pending": reply.pending,
        }

    async def set_member_role(
        self, user: UserId, cid: CorrelationId, *, space: str, member: str, role: str
    ) -> dict[str, Any]:
        request = pb.SetMemberRoleRequest(space=space, member=member, role=role)
        reply = await self._unary("SetMemberRole", request, user, cid, read=False)
        return {"member": _member(reply)}

    async def remove_member(
        self, user: UserId, cid: CorrelationId, *, space: str, member: str
    ) -> dict[str, Any]:
        request = pb.RemoveMemberRequest(space=space, member=member)
        reply = await self._unary("RemoveMember", request, user, cid, read=False)
        return {"removed": reply.member}

    async def leave_space(self, user: UserId, cid: CorrelationId, *, space: str) -> dict[str, Any]:
        reply = await self._unary(
            "LeaveSpace", pb.LeaveSpaceRequest(space=space), user, cid, read=False
        )
        return {"left": space, "space_deleted": reply.space_deleted}

    async def put_space_object(
        self,
        user: UserId,
        cid: CorrelationId,
        *,
        space: str,
        collection: str,
        object_id: str,
        data: Any,
        expected_version: int | None,
        idempotency_key: str,
        ttl_seconds: int,
        files: Sequence[str] = (),
    ) -> dict[str, Any]:
        request = pb.PutSpaceObjectRequest(
            space=space,
            collection=collection,
            id=object_id,
            data_json=json.dumps(data, separators=(",", ":")).encode(),
            idempotency_key=idempotency_key,
            ttl_seconds=ttl_seconds,
            files=files,
        )
        if expected_version is not None:
            request.expected_version = expected_version
        reply = await self._unary("PutSpaceObject", request, user, cid, read=False)
        return {
            "object": space_object_dict(reply.object),
            "created": reply.created,
            "replayed": reply.replayed,
        }

    async def get_space_object(
        self, user: UserId, cid: CorrelationId, *, space: str, collection: str, object_id: str
    ) -> dict[str, Any]:
        request = pb.GetSpaceObjectRequest(space=space, collection=collection, id=object_id)
        reply = await self._unary("GetSpaceObject", request, user, cid, read=True)
        found = space_object_dict(reply)
        return {"object": _readable(found, f"{collection}/{object_id}")}

    async def list_space_objects(
        self,
        user: UserId,
        cid: CorrelationId,
        *,
        space: str,
        collection: str,
        page_size: int,
        cursor: str,
    ) -> dict[str, Any]:
        request = pb.ListSpaceObjectsRequest(
            space=space, collection=collection, page_size=page_size, cursor=cursor
        )
        reply = await self._unary("ListSpaceObjects", request, user, cid, read=True)
        found = [space_object_dict(o) for o in reply.objects]
        page: dict[str, Any] = {
            "objects": [o for o in found if UNREADABLE not in o],
            "next_cursor": reply.next_cursor or None,
        }
        if unreadable := [_unreadable_entry(o) for o in found if UNREADABLE in o]:
            page["unreadable"] = unreadable
        return page

    async def delete_space_object(
        self,
        user: UserId,
        cid: CorrelationId,
        *,
        space: str,
        collection: str,
        object_id: str,
        expected_version: int | None,
        idempotency_key: str,
    ) -> dict[str, Any]:
        request = pb.DeleteSpaceObjectRequest(
            space=space, collection=collection, id=object_id, idempotency_key=idempotency_key
        )
        if expected_version is not None:
            request.expected_version = expected_version
        reply = await self._unary("DeleteSpaceObject", request, user, cid, read=False)
        return {
            "collection": reply.collection,
            "id": reply.id,
            "version": reply.version,
            "replayed": reply.replayed,
        }

    async def list_space_changes(
        self, user: UserId, cid: CorrelationId, *, space: str, cursor: str, limit: int
    ) -> dict[str, Any]:
        request = pb.ListSpaceChangesRequest(space=space, cursor=cursor, limit=limit)
        reply = await self._unary("ListSpaceChanges", request, user, cid, read=True)
        return {
            "changes": [
                {
                    "seq": c.seq,
                    "collection": c.collection,
                    "id": c.id,
                    "version": c.version,
                    "action": c.action,
                    "by": _author(c.author),
                    "at": _iso(c.at),
                }
                for c in reply.changes
            ],
            "next_cursor": reply.next_cursor,
            "more": reply.more,
        }

    async def list_tenant_spaces(
        self, cid: CorrelationId, *, after_id: str = "", limit: int = 0
    ) -> tuple[list[dict[str, Any]], bool]:
        """Support: the tenant's spaces and members (handles and roles), never contents."""
        request = pb.ListTenantSpacesRequest(after_id=after_id, limit=limit)

        async def attempt(remaining: float) -> pb.ListTenantSpacesResponse:
            reply: pb.ListTenantSpacesResponse = await self._stub.ListTenantSpaces(
                request, timeout=remaining, metadata=self._metadata(cid, None)
            )
            return reply

        reply = await self._call(attempt, retry=True)
        return [
            {**_space(t.space), "members": [_member(m) for m in t.members]} for t in reply.spaces
        ], reply.more

    # --- files ----------------------------------------------------------------------------

    async def create_file(
        self,
        user: UserId,
        cid: CorrelationId,
        *,
        name: str,
        content_type: str,
        size: int,
        file_id: str,
        ttl_seconds: int,
        space: str = "",
    ) -> dict[str, Any]:
        request = pb.CreateFileRequest(
            name=name,
            content_type=content_type,
            size=size,
            id=file_id,
            ttl_seconds=ttl_seconds,
            space=space,
        )
        return file_dict(await self._unary("CreateFile", request, user, cid, read=False))

    async def get_file(self, user: UserId, cid: CorrelationId, *, file_id: str) -> dict[str, Any]:
        """The file, with ``linked_from`` (the objects that name it) and whether there are
        ``more_linked_from``."""
        reply = await self._unary("GetFile", pb.GetFileRequest(id=file_id), user, cid, read=True)
        linked = [
            {"collection": o.collection, "id": o.id, **({"space": o.space} if o.space else {})}
            for o in reply.linked_from
        ]
        return {
            **file_dict(reply),
            "linked_from": linked,
            "more_linked_from": reply.more_linked_from,
        }

    async def list_files(
        self, user: UserId, cid: CorrelationId, *, page_size: int, cursor: str, space: str = ""
    ) -> dict[str, Any]:
        request = pb.ListFilesRequest(page_size=page_size, cursor=cursor, space=space)
        reply = await self._unary("ListFiles", request, user, cid, read=True)
        return {
            "files": [file_dict(f) for f in reply.files],
            "next_cursor": reply.next_cursor or None,
        }

    async def delete_file(
        self, user: UserId, cid: CorrelationId, *, file_id: str
    ) -> dict[str, Any]:
        reply = await self._unary(
            "DeleteFile", pb.GetFileRequest(id=file_id), user, cid, read=False
        )
        return file_dict(reply)

    async def upload_file(
        self,
        user: UserId,
        cid: CorrelationId,
        *,
        file_id: str,
        size: int,
        sha256: str,
        body: AsyncIterable[bytes],
        seconds: float,
    ) -> dict[str, Any]:
        """Stream ``body`` to the worker as the next version of the file; its metadata.

        Written as it is read, so at most a piece is held here. Whatever ends the
        body early (an error raised by ``body``, a client gone) cancels the call,
        and the worker keeps nothing.
        """
        call = self._stub.UploadFile(timeout=seconds, metadata=self._metadata(cid, user))
        header = pb.UploadFileHeader(id=file_id, size=size, sha256=sha256)
        try:
            try:
                await call.write(pb.UploadFileMessage(header=header))
                async for piece in body:
                    for at in range(0, len(piece), _UPLOAD_PIECE):
                        data = piece[at : at + _UPLOAD_PIECE]
                        await call.write(pb.UploadFileMessage(data=data))
                await call.done_writing()
            except asyncio.InvalidStateError:
                pass  # the worker answered before the end of the body: its answer says why
            reply: pb.FileInfo = await call
        except grpc.aio.AioRpcError as e:
            raise _translate(e) from e
        except BaseException:
            call.cancel()
            raise
        return file_dict(reply)

    async def open_download(
        self,
        user: UserId,
        cid: CorrelationId,
        *,
        file_id: str,
        byte_range: tuple[int | None, int | None, int | None] | None,
        seconds: float,
    ) -> Download:
        """Start a download; the file and the part that follows arrive before any byte.

        ``byte_range`` is (start, end inclusive, suffix) as an HTTP Range says it;
        ``seconds`` bounds the whole download.
        """
        request = pb.DownloadFileRequest(id=file_id)
        if byte_range is not None:
            start, end, suffix = byte_range
            if suffix is not None:
                request.suffix = suffix
            else:
                request.has_range, request.start = True, start or 0
                request.end = -1 if end is None else end
        call = self._stub.DownloadFile(request, timeout=seconds, metadata=self._metadata(cid, user))
        try:
            first = await call.read()
        except grpc.aio.AioRpcError as e:
            raise _translate(e) from e
        if first is grpc.aio.EOF or first.WhichOneof("part") != "head":
            call.cancel()
            raise PermanentError("the tenant worker sent a download without its head")
        head = first.head

        async def body() -> AsyncIterator[bytes]:
            try:
                while True:
                    message = await call.read()
                    if message is grpc.aio.EOF:
                        return
                    yield message.data
            except grpc.aio.AioRpcError as e:
                raise _translate(e) from e
            finally:
                call.cancel()

        return Download(
            file_dict(head.file), head.start, head.length, head.satisfiable, body(), call
        )

    async def open_file_export(
        self, user: UserId, cid: CorrelationId, *, seconds: float
    ) -> FileExport:
        """Start streaming the user's files (``ExportFiles``): each file, then its bytes.

        The first answer is awaited here, so a worker that refuses (or is down) raises
        WorkerError before anything is sent on; ``seconds`` bounds the whole stream.
        """
        call = self._stub.ExportFiles(
            pb.ExportFilesRequest(), timeout=seconds, metadata=self._metadata(cid, user)
        )
        try:
            first = await call.read()
        except grpc.aio.AioRpcError as e:
            raise _translate(e) from e
        except BaseException:
            call.cancel()
            raise

        def part(message: pb.ExportFileMessage) -> ExportPart:
            kind = message.WhichOneof("part")
            if kind == "data":
                return message.data
            if kind == "file":
                return ExportedFile(file_dict(message.file))
            if kind == "skipped":
                return SkippedFile(file_dict(message.skipped.file), message.skipped.reason)
            raise PermanentError("the tenant worker sent an export part of no known kind")

        async def parts() -> AsyncIterator[ExportPart]:
            try:
                message = first
                while message is not grpc.aio.EOF:
                    yield part(message)
                    message = await call.read()
            except grpc.aio.AioRpcError as e:
                raise _translate(e) from e
            finally:
                call.cancel()

        return FileExport(parts(), call)


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
        """Close the channels of workers no tenant points at any more (together: each
        waits for its calls under way)."""
        unused = [self._clients.pop(key) for key in list(self._clients) if key[0] not in endpoints]
        await asyncio.gather(*(client.close() for client in unused))

    async def close(self) -> None:
        await self.retain(set())
