"""A tool call: check the arguments, find the user, call the worker, shape the result.

Domain outcomes (not found, conflict, validation, quota, worker unavailable)
become tool results with ``isError`` whose text (and ``_meta``, under
``stowage.wire.TOOL_ERROR_META_KEY``) is a JSON object that says what happened
and what the model can do next. They carry no ``structuredContent``: it would
not match the tool's output schema, and clients that check it would hide the
error. Each call ends in one JSON log line
(tenant, tool, outcome, duration, correlation id; never tokens or payloads).
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import mcp_types as types

from gateway._errors import (
    InvalidArgument,
    TemporaryError,
    UnknownUser,
    WorkerError,
)
from gateway._metrics import Metrics
from gateway._tools import BUILTIN_COLLECTION, Catalogue, ToolSpec
from gateway._types import CorrelationId, Principal, Tenant, UserId
from gateway._worker import WorkerClient, WorkerPool
from stowage.wire import TOOL_ERROR_META_KEY

log = logging.getLogger("gateway.calls")

_HINTS = {
    "not_found": "Nothing with that id exists for this user. List the collection to find ids.",
    "conflict": "The object changed since it was read. error.current holds the stored state; "
    "show it to the user and, if they still want the change, retry with expected_version "
    "set to error.current.version.",
    "invalid_argument": "Correct the argument named in error.field and call again.",
    "quota_exceeded": "The user's storage quota is reached; delete objects that are no longer "
    "needed, then retry.",
    "unavailable": "Storage is temporarily unavailable. Retry in a few seconds; a write retried "
    "with the same idempotency_key is applied at most once.",
    "unknown_tool": "Call tools/list to see the available tools.",
    "internal": "Storage failed unexpectedly. Tell the user and try again later.",
}


@dataclass(frozen=True)
class CallContext:
    """Who is calling which tenant, established by the HTTP gate."""

    tenant: Tenant
    principal: Principal
    correlation_id: CorrelationId


def _result(structured: dict[str, Any]) -> types.CallToolResult:
    text = json.dumps(structured, separators=(",", ":"), default=str)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], structured_content=structured
    )


def error_result(
    code: str, message: str, cid: str, *, retriable: bool = False, **details: Any
) -> types.CallToolResult:
    body: dict[str, Any] = {
        "code": code,
        "message": message,
        "retriable": retriable,
        "correlation_id": cid,
        **{k: v for k, v in details.items() if v is not None},
    }
    payload = {"error": body, "hint": _HINTS.get(code, _HINTS["internal"])}
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=json.dumps(payload, default=str))],
        is_error=True,
        _meta={TOOL_ERROR_META_KEY: payload},
    )


class ToolCalls:
    def __init__(self, workers: WorkerPool, metrics: Metrics, *, user_cache_size: int) -> None:
        self._workers = workers
        self._metrics = metrics
        self._users: OrderedDict[tuple[str, str, str], UserId] = OrderedDict()
        self._user_cache_size = user_cache_size

    async def _user(self, ctx: CallContext, worker: WorkerClient) -> UserId:
        key = (ctx.tenant.name, ctx.principal.issuer, ctx.principal.subject)
        found = self._users.get(key)
        if found is not None:
            self._users.move_to_end(key)
            return found
        user = await worker.resolve_user(
            ctx.principal.issuer, ctx.principal.subject, ctx.correlation_id
        )
        self._users[key] = user
        while len(self._users) > self._user_cache_size:
            self._users.popitem(last=False)
        return user

    def _forget(self, ctx: CallContext) -> None:
        self._users.pop((ctx.tenant.name, ctx.principal.issuer, ctx.principal.subject), None)

    async def call(
        self, ctx: CallContext, catalogue: Catalogue, name: str, arguments: dict[str, Any]
    ) -> types.CallToolResult:
        start = time.perf_counter()
        cid = ctx.correlation_id
        spec = catalogue.tools.get(name)
        outcome = "ok"
        user: UserId | None = None
        try:
            if spec is None:
                outcome = "unknown_tool"
                return error_result("unknown_tool", f"No tool named {name!r}", cid)
            problem = next(iter(spec.validator.iter_errors(arguments)), None)
            if problem is not None:
                outcome = "invalid_argument"
                field = "/".join(str(p) for p in problem.absolute_path) or None
                return error_result("invalid_argument", problem.message, cid, field=field)
            worker = self._workers.client(ctx.tenant.endpoint, ctx.tenant.name)
            try:
                user = await self._user(ctx, worker)
                try:
                    structured = await self._run(spec, arguments, worker, user, cid)
                except UnknownUser:
                    # Erased since we cached it: resolve again (a fresh user), retry once.
                    self._forget(ctx)
                    user = await self._user(ctx, worker)
                    structured = await self._run(spec, arguments, worker, user, cid)
            except WorkerError as e:
                outcome = e.code
                self._metrics.upstream_errors.labels(ctx.tenant.name, e.grpc_code).inc()
                return self._error(e, cid)
            if spec.action == "erase":
                self._forget(ctx)
            return _result(structured)
        finally:
            elapsed = time.perf_counter() - start
            tool = name if spec is not None else "unknown"
            self._metrics.tool_calls.labels(ctx.tenant.name, tool, outcome).inc()
            self._metrics.tool_seconds.labels(ctx.tenant.name, tool).observe(elapsed)
            log.info(
                "tool call",
                extra={
                    "tenant": ctx.tenant.name,
                    "tool": tool,
                    "outcome": outcome,
                    "duration_ms": round(elapsed * 1000, 2),
                    "correlation_id": cid,
                    "user_id": user,
                },
            )

    @staticmethod
    def _error(e: WorkerError, cid: str) -> types.CallToolResult:
        details: dict[str, Any] = {}
        if isinstance(e, InvalidArgument):
            details["field"] = e.field
        if isinstance(e, TemporaryError):
            details["retry_after_seconds"] = e.delay
        current = getattr(e, "current", None)
        if current is not None:
            details["current"] = current
        return error_result(e.code, e.message, cid, retriable=e.retriable, **details)

    @staticmethod
    async def _run(
        spec: ToolSpec,
        args: dict[str, Any],
        worker: WorkerClient,
        user: UserId,
        cid: CorrelationId,
    ) -> dict[str, Any]:
        collection = spec.collection or args.get("collection", BUILTIN_COLLECTION)
        match spec.action:
            case "save":
                return await worker.put_object(
                    user,
                    cid,
                    collection=collection,
                    object_id=args.get("id", ""),
                    data=args["data"],
                    expected_version=args.get("expected_version"),
                    idempotency_key=args.get("idempotency_key", ""),
                    ttl_seconds=args.get("ttl_seconds", 0),
                )
            case "get":
                return await worker.get_object(
                    user, cid, collection=collection, object_id=args["id"]
                )
            case "list":
                return await worker.list_objects(
                    user,
                    cid,
                    collection=collection,
                    page_size=args.get("page_size", 0),
                    cursor=args.get("cursor", ""),
                )
            case "delete":
                return await worker.delete_object(
                    user,
                    cid,
                    collection=collection,
                    object_id=args["id"],
                    expected_version=args.get("expected_version"),
                    idempotency_key=args.get("idempotency_key", ""),
                )
            case "prefs_get":
                return await worker.get_preferences(user, cid)
            case "prefs_update":
                return await worker.update_preferences(
                    user,
                    cid,
                    patch=args["patch"],
                    expected_version=args.get("expected_version"),
                    idempotency_key=args.get("idempotency_key", ""),
                )
            case "usage":
                return await worker.get_usage(user, cid)
            case "export":
                return await worker.export_user_data(user, cid)
            case "erase":
                return await worker.erase_user_data(user, cid)
