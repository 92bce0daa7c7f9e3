"""The gRPC surface: metadata → call context, protobuf ↔ records, outcomes → status codes."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, TypeVar

import grpc

from stowage.revocation import OPERATOR, RevocationRequest
from stowage.tracing.rpc import server_span
from stowage.v1 import worker_pb2 as pb
from stowage.v1 import worker_pb2_grpc
from stowage.wire import (
    CORRELATION_ID,
    CORRELATION_KEY,
    CURRENT_OBJECT_KEY,
    CURRENT_PREFERENCES_KEY,
    CURRENT_SPACE_OBJECT_KEY,
    FIELD_KEY,
    INSTANCE_KEY,
    ROLE_NEEDED_KEY,
    TENANT_KEY,
    UNAVAILABLE_STORE_KEY,
    USER_ID,
    USER_ID_KEY,
    new_correlation_id,
)
from tenant_worker import _metrics
from tenant_worker._errors import (
    Conflict,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    StorageUnavailable,
    Unauthenticated,
    UnknownUser,
    WorkerError,
    WrongInstance,
    WrongTenant,
)
from tenant_worker._records import (
    CallContext,
    Claims,
    IdentityRecord,
    ObjectRecord,
    PreferencesRecord,
    SpaceObjectRecord,
    UserId,
)
from tenant_worker.files import (
    DownloadHead,
    FileExport,
    FileLinks,
    FileRecord,
    Files,
    FileTransfers,
    SkippedFile,
    UploadHeader,
    Wanted,
)
from tenant_worker.housekeeping._housekeeping import Housekeeping
from tenant_worker.objects._objects import Objects
from tenant_worker.people._access import Access
from tenant_worker.people._people import People
from tenant_worker.rpc._convert import (
    byte_range,
    change_message,
    delete_message,
    file_message,
    identity_message,
    linked_file_message,
    member_message,
    object_message,
    preferences_message,
    revocation_message,
    space_message,
    space_object_message,
)
from tenant_worker.rpc._frames import Frames
from tenant_worker.spaces import SpaceObjects, Spaces

log = logging.getLogger(__name__)


_CODES: dict[type[WorkerError], grpc.StatusCode] = {
    NotFound: grpc.StatusCode.NOT_FOUND,
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    Conflict: grpc.StatusCode.ABORTED,
    QuotaExceeded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    UnknownUser: grpc.StatusCode.FAILED_PRECONDITION,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    WrongTenant: grpc.StatusCode.PERMISSION_DENIED,
    WrongInstance: grpc.StatusCode.PERMISSION_DENIED,
    StorageUnavailable: grpc.StatusCode.UNAVAILABLE,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
}

Req = TypeVar("Req")
Resp = TypeVar("Resp")
_T = TypeVar("_T")
#: How long a cancelled upload may take to see its stream end and roll back.
_CANCELLED_UPLOAD_GRACE = 30.0
#: How long a refused upload goes on reading the rest of its body before answering.
_REFUSED_UPLOAD_DRAIN = 10.0


#: The gRPC service, as its spans name it (``stowage.tracing.rpc.server_span``).
_SERVICE = pb.DESCRIPTOR.services_by_name["TenantWorker"].full_name


def _check_addressed(metadata: dict[str, Any], tenant: str, instance: str | None) -> None:
    """Refuse a call for another tenant, or for another instance than this worker's."""
    meant_for = metadata.get(TENANT_KEY)
    if meant_for != tenant:
        raise WrongTenant(
            f"this worker serves tenant {tenant!r}; the call was for "
            + (f"{meant_for!r}" if meant_for is not None else f"no tenant (missing {TENANT_KEY})")
        )
    instance_meant = metadata.get(INSTANCE_KEY)
    if instance is not None and instance_meant is not None and instance_meant != instance:
        raise WrongInstance(
            f"this worker is instance {instance!r} of tenant {tenant!r}; the call was for "
            f"instance {instance_meant!r}"
        )


def call_context(
    context: grpc.aio.ServicerContext[Any, Any],
    tenant: str,
    needs_user: bool,
    instance: str | None = None,
) -> CallContext:
    """The call's context; refused unless it is for ``tenant`` (and ``instance``, when named)."""
    metadata = dict(context.invocation_metadata() or ())
    correlation = str(metadata.get(CORRELATION_KEY, ""))
    if not CORRELATION_ID.match(correlation):
        correlation = new_correlation_id()
    _check_addressed(metadata, tenant, instance)
    user = metadata.get(USER_ID_KEY)
    if user is None:
        if needs_user:
            raise Unauthenticated(f"missing {USER_ID_KEY} metadata")
        return CallContext(correlation)
    if not USER_ID.match(str(user)):
        raise Unauthenticated(f"{USER_ID_KEY} must be 32 lowercase hex characters")
    return CallContext(correlation, UserId(str(user)))


def _status(error: WorkerError) -> tuple[grpc.StatusCode, tuple[tuple[str, bytes], ...]]:
    # The nearest class with a code: a refinement (BucketUnavailable) keeps its base's.
    code = next(
        (_CODES[cls] for cls in type(error).__mro__ if cls in _CODES), grpc.StatusCode.INTERNAL
    )
    trailing: tuple[tuple[str, bytes], ...] = ()
    if isinstance(error, Conflict) and isinstance(error.current, SpaceObjectRecord):
        message = space_object_message(error.current).SerializeToString()
        trailing = ((CURRENT_SPACE_OBJECT_KEY, message),)
    elif isinstance(error, Conflict) and isinstance(error.current, ObjectRecord):
        trailing = ((CURRENT_OBJECT_KEY, object_message(error.current).SerializeToString()),)
    elif isinstance(error, Conflict) and isinstance(error.current, PreferencesRecord):
        trailing = (
            (CURRENT_PREFERENCES_KEY, preferences_message(error.current).SerializeToString()),
        )
    elif isinstance(error, InvalidArgument | QuotaExceeded):
        trailing = ((FIELD_KEY, error.field.encode()),)
    elif isinstance(error, PermissionDenied):
        trailing = ((ROLE_NEEDED_KEY, error.role_needed.encode()),)
    elif isinstance(error, StorageUnavailable) and error.store is not None:
        how = "refused" if error.refused else "unreachable"
        trailing = ((UNAVAILABLE_STORE_KEY, f"{error.store} {how}".encode()),)
    return code, trailing


class _Call:
    """Times one call, reports its outcome as a status, a metric and one log line."""

    def __init__(self, tenant: str, method: str) -> None:
        self.tenant, self.method = tenant, method
        self.code = grpc.StatusCode.OK
        self.correlation_id = ""
        self.start = time.perf_counter()

    async def fail(self, context: grpc.aio.ServicerContext[Any, Any], error: Exception) -> None:
        if isinstance(error, WorkerError):
            self.code, trailing = _status(error)
            await context.abort(self.code, str(error), trailing_metadata=trailing)
        self.code = grpc.StatusCode.INTERNAL
        log.error(
            "unexpected error",
            exc_info=error,
            extra={"method": self.method, "correlation_id": self.correlation_id},
        )
        await context.abort(
            self.code, f"internal error (correlation id {self.correlation_id}); see worker logs"
        )

    def done(self) -> None:
        elapsed = time.perf_counter() - self.start
        code = self.code.name
        _metrics.RPCS.labels(self.method, code).inc()
        _metrics.PROCESS_RPCS.inc()
        _metrics.RPC_SECONDS.labels(self.method).observe(elapsed)
        log.info(
            "rpc",
            extra={
                "tenant": self.tenant,
                "method": self.method,
                "code": code,
                "duration_ms": round(elapsed * 1000, 2),
                "correlation_id": self.correlation_id,
            },
        )


Handler = Callable[[Any, Any, CallContext], Awaitable[Any]]


def unary(needs_user: bool = True) -> Callable[[Handler], Callable[..., Awaitable[Any]]]:
    def decorate(handler: Handler) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(handler)
        async def wrapper(
            self: WorkerServicer, request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> Any:
            call = _Call(self.tenant, handler.__name__)
            with server_span(context, _SERVICE, handler.__name__):
                try:
                    ctx = call_context(context, self.tenant, needs_user, self.instance)
                    call.correlation_id = ctx.correlation_id
                    return await handler(self, request, ctx)
                except Exception as e:
                    await call.fail(context, e)
                finally:
                    call.done()

        return wrapper

    return decorate


def _optional(request: Any, field: str) -> int | None:
    return int(getattr(request, field)) if request.HasField(field) else None


def _revocation_request(message: pb.RevokeAccessRequest) -> RevocationRequest:
    """The request as the worker reads it: no time means now, no requester an operator."""
    return RevocationRequest(
        issuer=message.issuer,
        subject=message.subject,
        all_identities=message.all_identities,
        revoked_before=(
            message.revoked_before.ToDatetime(UTC) if message.HasField("revoked_before") else None
        ),
        requested_by=message.requested_by or OPERATOR,
        reason=message.reason,
    )


@dataclass(eq=False)
class WorkerServicer(worker_pb2_grpc.TenantWorkerServicer):
    """The gRPC surface of one tenant's services."""

    tenant: str
    objects: Objects
    people: People
    housekeeping: Housekeeping
    access: Access
    spaces: Spaces
    space_objects: SpaceObjects
    #: This run's instance id: calls that name another instance are refused.
    instance: str | None = None
    #: Files (metadata, and their bytes' streams); None: this worker serves none.
    files: Files | None = None
    transfers: FileTransfers | None = None
    #: The files objects name (checked at a save, returned with a read).
    links: FileLinks | None = None
    #: The largest message this worker's server sends (its replies on ``Calls`` too).
    max_message_bytes: int = 8 * 2**20
    #: ``Calls``: the unary methods on one long-lived stream.
    frames: Frames = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.frames = Frames(self, _SERVICE, self.max_message_bytes)

    async def Calls(
        self,
        request_iterator: AsyncIterator[pb.CallFrames],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> None:
        await self.frames.serve(request_iterator, context)

    @unary(needs_user=False)
    async def ResolveUser(
        self, request: pb.ResolveUserRequest, ctx: CallContext
    ) -> pb.ResolveUserResponse:
        user_id, created = await self.people.resolve(ctx, request.issuer, request.subject)
        if request.HasField("claims"):
            c = request.claims
            await self.spaces.signed_in(ctx, user_id, Claims(c.name, c.email, c.org))
        return pb.ResolveUserResponse(user_id=user_id, created=created)

    @unary()
    async def PutObject(
        self, request: pb.PutObjectRequest, ctx: CallContext
    ) -> pb.PutObjectResponse:
        result = await self.objects.put(
            ctx,
            request.collection,
            request.id,
            request.data_json,
            _optional(request, "expected_version"),
            request.idempotency_key,
            request.ttl_seconds,
            tuple(request.files),
        )
        linked = await self._linked(ctx, [result.object])
        return pb.PutObjectResponse(
            object=object_message(result.object, linked),
            created=result.created,
            replayed=result.replayed,
        )

    @unary()
    async def GetObject(
        self, request: pb.GetObjectRequest, ctx: CallContext
    ) -> pb.GetObjectResponse:
        record = await self.objects.get(ctx, request.collection, request.id)
        linked = await self._linked(ctx, [record])
        return pb.GetObjectResponse(object=object_message(record, linked))

    @unary()
    async def ListObjects(
        self, request: pb.ListObjectsRequest, ctx: CallContext
    ) -> pb.ListObjectsResponse:
        page = await self.objects.list(ctx, request.collection, request.page_size, request.cursor)
        linked = await self._linked(ctx, page.objects)
        return pb.ListObjectsResponse(
            objects=[object_message(o, linked) for o in page.objects],
            next_cursor=page.next_cursor,
        )

    async def _linked(
        self, ctx: CallContext, objects: Sequence[ObjectRecord], space: str | None = None
    ) -> dict[str, FileRecord] | None:
        """The files ``objects`` name that still exist, by id: one more read, and only
        when one of them names files (None: none does)."""
        if self.links is None or not any(o.files for o in objects):
            return None
        return await self.links.resolve(ctx, [Wanted(o.files, space) for o in objects])

    @unary()
    async def DeleteObject(
        self, request: pb.DeleteObjectRequest, ctx: CallContext
    ) -> pb.DeleteObjectResponse:
        result = await self.objects.delete(
            ctx,
            request.collection,
            request.id,
            _optional(request, "expected_version"),
            request.idempotency_key,
        )
        return delete_message(result)

    @unary()
    async def GetPreferences(
        self, request: pb.GetPreferencesRequest, ctx: CallContext
    ) -> pb.Preferences:
        return preferences_message(await self.people.preferences(ctx))

    @unary()
    async def UpdatePreferences(
        self, request: pb.UpdatePreferencesRequest, ctx: CallContext
    ) -> pb.Preferences:
        result = await self.people.update_preferences(
            ctx,
            request.merge_patch_json,
            _optional(request, "expected_version"),
            request.idempotency_key,
        )
        return preferences_message(result)

    async def ExportUserData(
        self, request: pb.ExportUserDataRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.ExportRecord]:
        call = _Call(self.tenant, "ExportUserData")
        try:
            ctx = call_context(context, self.tenant, needs_user=True, instance=self.instance)
            call.correlation_id = ctx.correlation_id
            yield pb.ExportRecord(user_id=ctx.user_id or "")
            async for item in self.people.export(ctx):
                if isinstance(item, IdentityRecord):
                    yield pb.ExportRecord(identity=identity_message(item))
                elif isinstance(item, PreferencesRecord):
                    yield pb.ExportRecord(preferences=preferences_message(item))
                else:
                    yield pb.ExportRecord(object=object_message(item))
            async for shared in self.space_objects.export(ctx):
                yield pb.ExportRecord(space_object=space_object_message(shared))
            if self.files is not None:
                async for found in self.files.export(ctx):
                    yield pb.ExportRecord(file=file_message(found))
        except Exception as e:
            await call.fail(context, e)
        finally:
            call.done()

    @unary()
    async def GetUsage(self, request: pb.GetUsageRequest, ctx: CallContext) -> pb.UsageReport:
        usage = await self.people.usage(ctx)
        report = pb.UsageReport(
            objects=usage.objects,
            bytes=usage.bytes,
            collections=[
                pb.CollectionUsage(collection=c, objects=n, bytes=b)
                for c, n, b in usage.by_collection
            ],
            max_objects=usage.max_objects,
            max_bytes=usage.max_bytes,
            max_object_bytes=usage.max_object_bytes,
        )
        if self.files is not None:
            files = await self.files.usage(ctx)
            report.objects += files.files
            report.bytes += files.bytes
            report.files, report.file_bytes = files.files, files.bytes
            report.max_file_bytes = files.max_file_bytes
        return report

    @unary()
    async def EraseUserData(
        self, request: pb.EraseUserDataRequest, ctx: CallContext
    ) -> pb.EraseUserDataResponse:
        result = await self.people.erase(ctx, request.confirm)
        if self.files is not None:
            # The erased files' objects in the Region's bucket, noted by the erasure.
            await self.files.delete_objects()
        return pb.EraseUserDataResponse(
            objects_deleted=result.objects_deleted,
            preferences_deleted=result.preferences_deleted,
            identities_deleted=result.identities_deleted,
            files_deleted=int(result.steps.get("files_deleted", 0)),
        )

    @unary(needs_user=False)
    async def RevokeAccess(
        self, request: pb.RevokeAccessRequest, ctx: CallContext
    ) -> pb.Revocation:
        record = await self.access.revoke(ctx, _revocation_request(request))
        return revocation_message(record)

    @unary(needs_user=False)
    async def ListRevocations(
        self, request: pb.ListRevocationsRequest, ctx: CallContext
    ) -> pb.ListRevocationsResponse:
        records, more = await self.access.list(ctx, request.after_id, request.limit)
        return pb.ListRevocationsResponse(
            revocations=[revocation_message(r) for r in records], more=more
        )

    @unary(needs_user=False)
    async def PurgeExpired(
        self, request: pb.PurgeExpiredRequest, ctx: CallContext
    ) -> pb.PurgeExpiredResponse:
        purged, more = await self.housekeeping.purge_expired(ctx, request.limit)
        purged += await self.space_objects.purge_expired(ctx, request.limit or 500)
        if self.files is not None:
            files_purged, files_more = await self.files.purge_expired(ctx, request.limit or 50)
            purged, more = purged + files_purged, more or files_more
        _metrics.PURGED.inc(purged)
        return pb.PurgeExpiredResponse(purged=purged, more=more)

    @unary(needs_user=False)
    async def UpgradeObjects(
        self, request: pb.UpgradeObjectsRequest, ctx: CallContext
    ) -> pb.UpgradeObjectsResponse:
        upgraded, more = await self.housekeeping.upgrade(ctx, request.collection, request.limit)
        return pb.UpgradeObjectsResponse(upgraded=upgraded, more=more)

    # --- shared spaces -----------------------------------------------------------------

    @unary()
    async def CreateSpace(self, request: pb.CreateSpaceRequest, ctx: CallContext) -> pb.Space:
        return space_message(await self.spaces.create(ctx, request.name))

    @unary()
    async def ListSpaces(
        self, request: pb.ListSpacesRequest, ctx: CallContext
    ) -> pb.ListSpacesResponse:
        return pb.ListSpacesResponse(spaces=[space_message(x) for x in await self.spaces.list(ctx)])

    @unary()
    async def GetSpace(self, request: pb.GetSpaceRequest, ctx: CallContext) -> pb.SpaceDetail:
        detail = await self.spaces.get(ctx, request.space)
        return pb.SpaceDetail(
            space=space_message(detail.space),
            members=[member_message(m) for m in detail.members],
            pending_invites=detail.pending_invites,
        )

    @unary()
    async def InviteMember(
        self, request: pb.InviteMemberRequest, ctx: CallContext
    ) -> pb.InviteMemberResponse:
        result = await self.spaces.invite(
            ctx, request.space, request.user, request.email, request.role
        )
        reply = pb.InviteMemberResponse(pending=result.pending)
        if result.member is not None:
            reply.member.CopyFrom(member_message(result.member))
        return reply

    @unary()
    async def SetMemberRole(self, request: pb.SetMemberRoleRequest, ctx: CallContext) -> pb.Member:
        return member_message(
            await self.spaces.set_role(ctx, request.space, request.member, request.role)
        )

    @unary()
    async def RemoveMember(
        self, request: pb.RemoveMemberRequest, ctx: CallContext
    ) -> pb.RemoveMemberResponse:
        member = await self.spaces.remove(ctx, request.space, request.member)
        return pb.RemoveMemberResponse(member=member)

    @unary()
    async def LeaveSpace(
        self, request: pb.LeaveSpaceRequest, ctx: CallContext
    ) -> pb.LeaveSpaceResponse:
        deleted = await self.spaces.leave(ctx, request.space)
        if deleted:
            await self._delete_file_objects()
        return pb.LeaveSpaceResponse(space_deleted=deleted)

    async def _delete_file_objects(self) -> None:
        """Delete from the Region's bucket what a space that went noted for deletion (its
        files' objects); what fails now, a later housekeeping pass deletes."""
        if self.files is not None:
            await self.files.delete_objects()

    @unary()
    async def PutSpaceObject(
        self, request: pb.PutSpaceObjectRequest, ctx: CallContext
    ) -> pb.PutSpaceObjectResponse:
        result = await self.space_objects.put(
            ctx,
            request.space,
            request.collection,
            request.id,
            request.data_json,
            _optional(request, "expected_version"),
            request.idempotency_key,
            request.ttl_seconds,
            tuple(request.files),
        )
        linked = await self._linked(ctx, [result.object.object], request.space)
        return pb.PutSpaceObjectResponse(
            object=space_object_message(result.object, linked),
            created=result.created,
            replayed=result.replayed,
        )

    @unary()
    async def GetSpaceObject(
        self, request: pb.GetSpaceObjectRequest, ctx: CallContext
    ) -> pb.SpaceObject:
        found = await self.space_objects.get(ctx, request.space, request.collection, request.id)
        linked = await self._linked(ctx, [found.object], request.space)
        return space_object_message(found, linked)

    @unary()
    async def ListSpaceObjects(
        self, request: pb.ListSpaceObjectsRequest, ctx: CallContext
    ) -> pb.ListSpaceObjectsResponse:
        page = await self.space_objects.list(
            ctx, request.space, request.collection, request.page_size, request.cursor
        )
        linked = await self._linked(ctx, [o.object for o in page.objects], request.space)
        return pb.ListSpaceObjectsResponse(
            objects=[space_object_message(o, linked) for o in page.objects],
            next_cursor=page.next_cursor,
        )

    @unary()
    async def DeleteSpaceObject(
        self, request: pb.DeleteSpaceObjectRequest, ctx: CallContext
    ) -> pb.DeleteObjectResponse:
        result = await self.space_objects.delete(
            ctx,
            request.space,
            request.collection,
            request.id,
            _optional(request, "expected_version"),
            request.idempotency_key,
        )
        return delete_message(result)

    @unary()
    async def ListSpaceChanges(
        self, request: pb.ListSpaceChangesRequest, ctx: CallContext
    ) -> pb.ListSpaceChangesResponse:
        page = await self.space_objects.changes(ctx, request.space, request.cursor, request.limit)
        return pb.ListSpaceChangesResponse(
            changes=[change_message(c) for c in page.changes],
            next_cursor=page.next_cursor,
            more=page.more,
        )

    @unary(needs_user=False)
    async def ListTenantSpaces(
        self, request: pb.ListTenantSpacesRequest, ctx: CallContext
    ) -> pb.ListTenantSpacesResponse:
        found, more = await self.spaces.support_listing(request.after_id, request.limit)
        return pb.ListTenantSpacesResponse(
            spaces=[
                pb.TenantSpace(space=space_message(s), members=[member_message(m) for m in ms])
                for s, ms in found
            ],
            more=more,
        )

    # --- files -----------------------------------------------------------------------------

    def _files(self) -> Files:
        if self.files is None:
            raise NotFound("this worker stores no files")
        return self.files

    def _transfers(self) -> FileTransfers:
        if self.transfers is None:
            raise NotFound("this worker stores no files")
        return self.transfers

    @unary()
    async def CreateFile(self, request: pb.CreateFileRequest, ctx: CallContext) -> pb.FileInfo:
        record = await self._files().create(
            ctx,
            request.name,
            request.content_type,
            request.size,
            request.id,
            request.ttl_seconds,
            request.space,
        )
        return file_message(record)

    @unary()
    async def GetFile(self, request: pb.GetFileRequest, ctx: CallContext) -> pb.FileInfo:
        record = await self._files().get(ctx, request.id)
        if self.links is None:
            return file_message(record)
        linked_from, more = await self.links.linked_from(ctx, record)
        return linked_file_message(record, linked_from, more)

    @unary()
    async def ListFiles(
        self, request: pb.ListFilesRequest, ctx: CallContext
    ) -> pb.ListFilesResponse:
        found, cursor = await self._files().list(
            ctx, request.page_size, request.cursor, request.space
        )
        return pb.ListFilesResponse(files=[file_message(f) for f in found], next_cursor=cursor)

    @unary()
    async def DeleteFile(self, request: pb.GetFileRequest, ctx: CallContext) -> pb.FileInfo:
        return file_message(await self._files().delete(ctx, request.id))

    async def UploadFile(
        self,
        requests: AsyncIterator[pb.UploadFileMessage],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> pb.FileInfo | None:
        call = _Call(self.tenant, "UploadFile")
        try:
            ctx = call_context(context, self.tenant, needs_user=True, instance=self.instance)
            call.correlation_id = ctx.correlation_id
            first = await anext(aiter(requests), None)
            if first is None or first.WhichOneof("part") != "header":
                raise InvalidArgument("header", "an upload starts with its header")
            h = first.header
            header = UploadHeader(file_id=h.id, size=h.size, sha256=h.sha256)
            upload = self._transfers().upload(ctx, header, _upload_bytes(requests))
            try:
                record = await _finished_even_if_cancelled(upload)
            except Exception:
                await _drain(requests, header.size, context)
                raise
            return file_message(record)
        except Exception as e:
            await call.fail(context, e)
            return None
        finally:
            call.done()

    async def DownloadFile(
        self, request: pb.DownloadFileRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.DownloadFileMessage]:
        call = _Call(self.tenant, "DownloadFile")
        try:
            ctx = call_context(context, self.tenant, needs_user=True, instance=self.instance)
            call.correlation_id = ctx.correlation_id
            transfers = self._transfers()
            async for part in transfers.download(ctx, request.id, byte_range(request)):
                if isinstance(part, DownloadHead):
                    head = pb.DownloadHead(
                        file=file_message(part.file),
                        start=part.start,
                        length=part.length,
                        satisfiable=part.satisfiable,
                    )
                    yield pb.DownloadFileMessage(head=head)
                else:
                    yield pb.DownloadFileMessage(data=part)
        except Exception as e:
            await call.fail(context, e)
        finally:
            call.done()

    async def ExportFiles(
        self, request: pb.ExportFilesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.ExportFileMessage]:
        call = _Call(self.tenant, "ExportFiles")
        try:
            ctx = call_context(context, self.tenant, needs_user=True, instance=self.instance)
            call.correlation_id = ctx.correlation_id
            if self.files is None or self.transfers is None:
                return
            async for part in FileExport(self.files, self.transfers).stream(ctx):
                if isinstance(part, bytes):
                    yield pb.ExportFileMessage(data=part)
                elif isinstance(part, SkippedFile):
                    skipped = pb.SkippedFile(file=file_message(part.file), reason=part.reason)
                    yield pb.ExportFileMessage(skipped=skipped)
                else:
                    yield pb.ExportFileMessage(file=file_message(part))
        except Exception as e:
            await call.fail(context, e)
        finally:
            call.done()


async def _finished_even_if_cancelled(work: Awaitable[_T]) -> _T:
    """``work``'s result; if the call is cancelled meanwhile, ``work`` still ends on its own.

    A caller that goes away mid-upload cancels this handler. Cancelled at an
    arbitrary await, the upload's transaction could be left half rolled back, and
    on SQLite its write lock held, stalling the next write. Shielded, the upload
    instead sees its stream end, rolls back in full, and only then does the
    handler end as cancelled.
    """
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        done, _ = await asyncio.wait([task], timeout=_CANCELLED_UPLOAD_GRACE)
        if task in done and not task.cancelled():
            task.exception()  # retrieved: the call is gone, nobody reads its outcome
        else:
            task.cancel()
        raise


async def _drain(
    requests: AsyncIterator[pb.UploadFileMessage],
    size: int,
    context: grpc.aio.ServicerContext[Any, Any],
) -> None:
    """Read and drop the rest of a refused upload's body: at most ``size`` bytes, briefly.

    A refusal mid-body (a quota reached, the store gone away) answered at once
    crosses the bytes the gateway is still sending, and gRPC may then report the
    call to it as INTERNAL instead of this refusal. Read to the end, the body's
    sender finishes writing and reads the refusal itself. The gateway never
    sends more than the header's size, which the file's limit bounds.
    """
    remaining = context.time_remaining()
    seconds = _REFUSED_UPLOAD_DRAIN if remaining is None else min(remaining, _REFUSED_UPLOAD_DRAIN)
    left = size
    try:
        async with asyncio.timeout(seconds):
            async for message in requests:
                left -= len(message.data)
                if left < 0:
                    return
    except (TimeoutError, grpc.aio.AioRpcError, grpc.RpcError):
        return  # the refusal goes out as it is; the gateway then reports what it can


async def _upload_bytes(requests: AsyncIterator[pb.UploadFileMessage]) -> AsyncIterator[bytes]:
    """The bytes of an upload's messages after its header."""
    async for message in requests:
        if message.WhichOneof("part") != "data":
            raise InvalidArgument("header", "an upload has one header, before its bytes")
        yield message.data
