"""``/t/{tenant}/files/{file}``: a signed link used. PUT streams the body to the worker,
GET (and HEAD) streams the file back, with byte ranges. ``/t/{tenant}/files/export``
(an export link, signed as one: ``_signing``) streams the user's export archive
(``_archive``).

The link is checked before anything else is read (tenant, signature, method,
expiry), then the rate limits apply as for a tool call (the user's bucket
and the tenant's). An upload's length is held to the link's size while the
body streams: a Content-Length over it is refused at once, a body that runs
past it (chunked, or endless) as soon as it does, both with 413, and the
worker's transaction keeps nothing. Every answer is one JSON log line
(tenant, method, status, bytes, duration, correlation id; never the link).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from gateway._errors import (
    InvalidArgument,
    LinksUnavailable,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    StoreUnavailable,
    TemporaryError,
    UnknownUser,
    WorkerError,
)
from gateway._ratelimit import Bucket, RateLimiter
from gateway._types import CorrelationId, Tenant, UserId
from gateway.directory._directory import TenantDirectory
from gateway.files._archive import export_archive
from gateway.files._keys import SigningKeys
from gateway.files._serving import archive_headers, file_headers, parse_range, refusal_headers
from gateway.files._signing import Grant, Kind, LinkRefused, Method, check, read_grant
from gateway.forwarding._worker import FileExport, WorkerClient, WorkerPool
from stowage.wire import CORRELATION_ID, new_correlation_id

log = logging.getLogger("gateway.files")

#: How long one upload or download may take end to end, seconds.
TRANSFER_SECONDS = 900.0
#: A refused body is read (and dropped) up to this much more before the answer, so that a
#: client that writes its whole body before reading can read the 413; past it the
#: connection closes on the rest.
_DRAIN_BYTES = 1024 * 1024


class _BodyTooLong(Exception):
    """The body ran past the size the link allows."""


async def _drain(body: AsyncIterator[bytes]) -> None:
    """Read and drop up to ``_DRAIN_BYTES`` more of a refused body."""
    dropped = 0
    try:
        async for piece in body:
            dropped += len(piece)
            if dropped > _DRAIN_BYTES:
                return
    except ClientDisconnect:
        return


def _answer(status: int, code: str, message: str, cid: str, **extra: Any) -> Response:
    headers = {**refusal_headers(), "x-request-id": cid}
    headers.update({k: str(v) for k, v in extra.pop("headers", {}).items()})
    body = {"error": code, "message": message, "correlation_id": cid, **extra}
    return JSONResponse(body, status_code=status, headers=headers)


def _unavailable(error: TemporaryError, retry: int, cid: str) -> str:
    """What a 503 says: which of the tenant's stores failed, when the worker said so (the
    worker's own words, which name the store's address, go to the log); else the
    adapter's message (the worker itself is down)."""
    if not isinstance(error, StoreUnavailable):
        return error.message
    log.warning(
        "file link refused, a store is unavailable: %s", error.said, extra={"correlation_id": cid}
    )
    return (
        f"{error.message[:1].upper()}{error.message[1:]}. No file was changed; retry in {retry} s."
    )


def _worker_refusal(error: WorkerError, cid: str) -> Response:
    if isinstance(error, NotFound | UnknownUser):
        return _answer(404, "not_found", error.message, cid)
    if isinstance(error, PermissionDenied):
        return _answer(403, error.code, error.message, cid, role_needed=error.role_needed)
    if isinstance(error, QuotaExceeded):
        return _answer(413, "too_large", error.message, cid, field=error.field)
    if isinstance(error, InvalidArgument):
        return _answer(400, "invalid_upload", error.message, cid, field=error.field)
    if isinstance(error, TemporaryError):
        retry = max(1, math.ceil(error.delay))
        message = _unavailable(error, retry, cid)
        return _answer(503, "unavailable", message, cid, headers={"retry-after": retry})
    if isinstance(error, LinksUnavailable):
        return _answer(503, error.code, error.message, cid)
    return _answer(502, "storage_failed", error.message, cid)


class FileEndpoint:
    """The ASGI endpoint of ``/t/{tenant}/files/{file}``."""

    def __init__(
        self,
        directory: TenantDirectory,
        workers: WorkerPool,
        keys: SigningKeys,
        limiter: RateLimiter,
        *,
        transfer_seconds: float = TRANSFER_SECONDS,
    ) -> None:
        self.directory, self.workers, self.keys = directory, workers, keys
        self.limiter = limiter
        self.transfer_seconds = transfer_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        started = time.perf_counter()
        incoming = request.headers.get("x-request-id", "")
        cid = CorrelationId(incoming if CORRELATION_ID.match(incoming) else new_correlation_id())
        tenant_name = str(request.path_params.get("tenant", ""))
        response = await self._respond(request, cid)
        response.headers.setdefault("x-request-id", cid)
        await response(scope, receive, send)
        log.info(
            "file request",
            extra={
                "tenant": tenant_name,
                "method": request.method,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "correlation_id": cid,
            },
        )

    async def _respond(self, request: Request, cid: CorrelationId) -> Response:
        tenant = self.directory.get(str(request.path_params["tenant"]))
        if tenant is None:
            if not self.directory.loaded:
                return _answer(503, "starting", "The gateway is starting.", cid)
            return _answer(404, "not_found", "No such tenant.", cid)
        try:
            grant = self._granted(request, tenant)
        except LinkRefused as e:
            return _answer(e.status, e.code, e.message, cid)
        except LinksUnavailable as e:
            return _answer(503, e.code, e.message, cid)
        if (limited := await self._limited(tenant, grant, cid)) is not None:
            return limited
        worker = self.workers.client(tenant.endpoint, tenant.name)
        user = UserId(grant.user)
        try:
            if grant.kind is Kind.EXPORT:
                return await self._export(request, worker, user, tenant, cid)
            if grant.method is Method.PUT:
                return await self._upload(request, worker, user, grant, cid)
            return await self._download(request, worker, user, grant, cid)
        except WorkerError as e:
            return _worker_refusal(e, cid)

    def _granted(self, request: Request, tenant: Tenant) -> Grant:
        file_id = str(request.path_params["file"])
        grant, sig = read_grant(tenant.name, file_id, request.query_params)
        keys = self.keys.verifying(tenant.name, grant.expires)
        check(keys, grant, sig, Method.of(request.method), time.time())
        return grant

    async def _limited(self, tenant: Tenant, grant: Grant, cid: str) -> Response | None:
        denial = await self.limiter.acquire(
            [
                Bucket(f"{tenant.name}:f:{grant.user}", tenant.per_user, "user"),
                Bucket(f"{tenant.name}:t", tenant.per_tenant, "tenant"),
            ]
        )
        if denial is None:
            return None
        retry = max(1, math.ceil(denial.retry_after))
        return _answer(
            429,
            "rate_limited",
            f"Rate limit of the {denial.scope} exceeded; retry after {retry} s",
            cid,
            headers={"retry-after": retry},
        )

    async def _upload(
        self, request: Request, worker: WorkerClient, user: UserId, grant: Grant, cid: CorrelationId
    ) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) != grant.size:
            status = 413 if int(declared) > grant.size else 400
            if int(declared) <= grant.size + _DRAIN_BYTES:
                await _drain(request.stream())
            return _answer(
                status,
                "too_large" if status == 413 else "invalid_upload",
                f"The body is {declared} bytes (Content-Length); this link takes exactly "
                f"{grant.size}. Nothing was stored.",
                cid,
            )

        async def body() -> AsyncIterator[bytes]:
            received = 0
            async for piece in request.stream():
                received += len(piece)
                if received > grant.size:
                    raise _BodyTooLong
                if piece:
                    yield piece

        try:
            found = await worker.upload_file(
                user,
                cid,
                file_id=grant.file_id,
                size=grant.size,
                sha256=grant.sha256,
                body=body(),
                seconds=self.transfer_seconds,
            )
        except _BodyTooLong:
            await _drain(request.stream())
            return _answer(
                413,
                "too_large",
                f"The body ran past the {grant.size} bytes this link takes. Nothing was stored.",
                cid,
                headers={"connection": "close"},
            )
        except ClientDisconnect:
            return _answer(400, "invalid_upload", "The upload broke off. Nothing was stored.", cid)
        return JSONResponse({"file": found}, headers=refusal_headers())

    async def _download(
        self, request: Request, worker: WorkerClient, user: UserId, grant: Grant, cid: CorrelationId
    ) -> Response:
        wanted = parse_range(request.headers.get("range"))
        download = await worker.open_download(
            user, cid, file_id=grant.file_id, byte_range=wanted, seconds=self.transfer_seconds
        )
        size = download.file["size"]
        if not download.satisfiable:
            download.close()
            return _answer(
                416,
                "range_not_satisfiable",
                f"The file has {size} bytes; the range asked for lies outside it.",
                cid,
                headers={"content-range": f"bytes */{size}"},
            )
        headers = file_headers(download.file)
        headers["content-length"] = str(download.length)
        status = 200
        if wanted is not None:
            status = 206
            last = download.start + download.length - 1
            headers["content-range"] = f"bytes {download.start}-{last}/{size}"
        if request.method == "HEAD":
            download.close()
            return Response(status_code=status, headers=headers)
        return StreamingResponse(download.body, status_code=status, headers=headers)

    async def _export(
        self,
        request: Request,
        worker: WorkerClient,
        user: UserId,
        tenant: Tenant,
        cid: CorrelationId,
    ) -> Response:
        """The user's export archive, streamed; a refusal before its first byte is an answer."""
        now = datetime.now(UTC)
        headers = archive_headers(f"stowage-export-{tenant.name}-{now:%Y%m%dT%H%M%SZ}.tar")
        if request.method == "HEAD":
            return Response(status_code=200, headers=headers)
        exported = await worker.export_user_data(user, cid)
        files = await worker.open_file_export(user, cid, seconds=self.transfer_seconds)
        archive = export_archive(exported, files.parts, tenant=tenant.name, now=now)
        return StreamingResponse(_closing(archive, files, tenant.name, cid), headers=headers)


async def _closing(
    body: AsyncIterator[bytes], files: FileExport, tenant: str, cid: CorrelationId
) -> AsyncIterator[bytes]:
    """``body``; the worker's stream ends with it, also when the client goes away. A failure
    once the archive has begun can only break it off (the client sees an incomplete
    download, without the manifest): logged here, then raised to end the connection."""
    try:
        async for piece in body:
            yield piece
    except WorkerError as e:
        log.warning(
            "export archive broken off: %s",
            e.message,
            extra={"tenant": tenant, "correlation_id": cid},
        )
        raise
    finally:
        files.close()
