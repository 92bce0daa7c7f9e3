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
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import mcp_types as types
from jsonschema import ValidationError

from gateway._errors import (
    InvalidArgument,
    QuotaExceeded,
    TemporaryError,
    UnknownUser,
    WorkerError,
)
from gateway._metrics import Metrics
from gateway._types import CorrelationId, Principal, Tenant, UserId
from gateway.auth._revocations import Revocations
from gateway.forwarding._worker import WorkerClient, WorkerPool
from gateway.surface._operations import Invocation
from gateway.surface._tools import BUILTIN_COLLECTION, Catalogue, ToolSpec
from stowage.values import find_problem, string_problem
from stowage.wire import TOOL_ERROR_META_KEY, field_path

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
    "unreadable_data": "The stored data breaks a limit that came after it was saved and "
    "cannot be returned as JSON. my_data_export gives its stored text; save it again in a "
    "simpler shape, or delete it.",
    "access_revoked": "The user revoked this app's access. Tell them, and ask them to connect "
    "the app again if they want to go on; their stored data is kept.",
    "insufficient_scope": "The user did not grant this app the permission in error.scope. Ask "
    "them to connect the app again and allow it (ChatGPT offers that itself), then retry.",
    "internal": "Storage failed unexpectedly. Tell the user and try again later.",
}


def _field_of(problem: ValidationError) -> str | None:
    """The argument a schema violation is about, e.g. ``data.tags[1]``.

    A missing required property and an unexpected one are named themselves
    (``data.title``, ``colour``), not the object that lacks or holds them.
    """
    path = list(problem.absolute_path)
    instance = problem.instance
    if problem.validator == "required" and isinstance(instance, dict):
        missing = [name for name in problem.validator_value if name not in instance]
        path += missing[:1]
    elif problem.validator == "additionalProperties" and isinstance(instance, dict):
        declared = problem.schema.get("properties", {}) if isinstance(problem.schema, dict) else {}
        patterns = (
            problem.schema.get("patternProperties", {}) if isinstance(problem.schema, dict) else {}
        )
        extra = [
            name
            for name in instance
            if name not in declared and not any(re.search(p, name) for p in patterns)
        ]
        path += extra[:1]
    return field_path(path) or None


def _refusal(spec: ToolSpec, arguments: dict[str, Any], cid: str) -> types.CallToolResult | None:
    """The ``invalid_argument`` result for arguments the tool or the storage rule refuses.

    The tool's input schema first, then :mod:`stowage.values` over every argument
    (ids, keys, cursors and the data alike), so nothing the worker would have to
    refuse, or could not give back, leaves the gateway.
    """
    problem = next(iter(spec.validator.iter_errors(arguments)), None)
    if problem is not None:
        return error_result("invalid_argument", problem.message, cid, field=_field_of(problem))
    for name, value in arguments.items():
        if (message := string_problem(name)) is not None:
            return error_result("invalid_argument", f"an argument's name {message}", cid)
        # Each argument is a value of its own: ``data`` may nest as deep as the worker allows.
        found = find_problem(value, (name,))
        if found is not None:
            field = found.field()
            return error_result("invalid_argument", f"{field}: {found.message}", cid, field=field)
    return None


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


def _printable(value: Any) -> Any:
    """``value``, with a text's lone surrogates written as ``\\udXXX`` escapes.

    A refused argument's name may hold one (``{"x\\ud800": 1}``); echoed as it is, it
    would make the answer unserialisable, an internal error instead of the refusal.
    """
    if isinstance(value, str) and string_problem(value) is not None:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def error_result(
    code: str, message: str, cid: str, *, retriable: bool = False, **details: Any
) -> types.CallToolResult:
    body: dict[str, Any] = {
        "code": code,
        "message": _printable(message),
        "retriable": retriable,
        "correlation_id": cid,
        **{k: _printable(v) for k, v in details.items() if v is not None},
    }
    payload = {"error": body, "hint": _HINTS.get(code, _HINTS["internal"])}
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=json.dumps(payload, default=str))],
        is_error=True,
        _meta={TOOL_ERROR_META_KEY: payload},
    )


#: Where ChatGPT (the OpenAI Apps SDK) reads a tool-level auth challenge on an
#: ``isError`` result: a list of RFC 7235 challenges, e.g. ``Bearer
#: resource_metadata="…", error="insufficient_scope", scope="stowage:write"``.
#: Seeing it, ChatGPT offers the user to connect the app again.
WWW_AUTHENTICATE_META_KEY = "mcp/www_authenticate"
#: ChatGPT sends client metadata under ``_meta["openai/…"]`` with every tool call.
APPS_SDK_META_PREFIX = "openai/"


def speaks_apps_sdk(params: object) -> bool:
    """Whether a ``tools/call``'s params carry the Apps SDK's ``openai/…`` metadata.

    Only the *shape* of a refusal depends on it (never whether to refuse).
    """
    meta = params.get("_meta") if isinstance(params, dict) else None
    return isinstance(meta, dict) and any(
        isinstance(key, str) and key.startswith(APPS_SDK_META_PREFIX) for key in meta
    )


def challenge_result(
    code: str, message: str, cid: str, challenge: str, **details: Any
) -> types.CallToolResult:
    """A tool error that also asks the client to authorize again, the Apps SDK way."""
    result = error_result(code, message, cid, **details)
    meta = {**(result.meta or {}), WWW_AUTHENTICATE_META_KEY: [challenge]}
    return result.model_copy(update={"meta": meta})


class ToolCalls:
    def __init__(
        self,
        workers: WorkerPool,
        metrics: Metrics,
        revocations: Revocations,
        *,
        user_cache_size: int,
    ) -> None:
        self._workers = workers
        self._metrics = metrics
        self._revocations = revocations
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
            refusal = _refusal(spec, arguments, cid)
            if refusal is not None:
                outcome = "invalid_argument"
                return refusal
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
            if spec.forgets_user:
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
        if isinstance(e, InvalidArgument | QuotaExceeded):
            details["field"] = e.field
        if isinstance(e, TemporaryError):
            details["retry_after_seconds"] = e.delay
        current = getattr(e, "current", None)
        if current is not None:
            details["current"] = current
        return error_result(e.code, e.message, cid, retriable=e.retriable, **details)

    async def _run(
        self,
        spec: ToolSpec,
        args: dict[str, Any],
        worker: WorkerClient,
        user: UserId,
        cid: CorrelationId,
    ) -> dict[str, Any]:
        collection = spec.collection or args.get("collection", BUILTIN_COLLECTION)
        return await spec.operation(
            Invocation(worker, user, cid, collection, args, self._revocations)
        )
