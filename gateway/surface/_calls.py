"""A tool call: check the arguments, find the user, call the worker, shape the result.

Domain outcomes (not found, conflict, validation, quota, worker unavailable)
become tool results with ``isError`` whose text (and ``_meta``, under
``stowage.wire.TOOL_ERROR_META_KEY``) is a JSON object that says what happened
and what the model can do next. They carry no ``structuredContent``: it would
not match the tool's output schema, and clients that check it would hide the
error. Each call ends in one JSON log line
(tenant, tool, outcome, duration, correlation id; never tokens or payloads).
While tracing, the call's span (the lane's or the SDK's ``tools/call``) gets
the tenant, tool and outcome, a failed one the reason, and the latency
histogram an exemplar with the trace id.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable
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
from gateway.surface._operations import FileLinks, Invocation
from gateway.surface._tools import BUILTIN_COLLECTION, Catalogue, ToolSpec
from stowage import tracing
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
    "files_unavailable": "Files cannot be moved right now: the app's file links are not "
    "configured. Tell the user; the operator of this app must set its signing key.",
    "permission_denied": "The user's role in this space does not allow it (error.role_needed "
    "names the role that does). Tell them, and ask an owner of the space to change their "
    "role if they need it.",
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


#: Outcomes that are the platform's failure, not the caller's: their spans are errors.
#: (Their messages name no user data: the gateway writes them itself.)
_FAILURES = frozenset({"unavailable", "internal"})


def _exemplar(tenant: str, tool: str, outcome: str) -> dict[str, str] | None:
    """The call's span gets its outcome; the histogram, the trace id when the trace is kept."""
    if not tracing.enabled():
        return None
    tracing.annotate({"stowage.tenant": tenant, "stowage.tool": tool, "stowage.outcome": outcome})
    trace_id = tracing.sampled_trace_id()
    return {"trace_id": trace_id} if trace_id is not None else None


def _claims(ctx: CallContext) -> dict[str, str] | None:
    """What the worker may know of the caller: the claims the tenant names, nothing else."""
    identity = ctx.tenant.spec.identity
    p = ctx.principal
    claims = {
        "name": p.name if identity.name_claim else None,
        "email": p.email if identity.email_claim and p.email_verified else None,
        "org": p.org if identity.org_claim else None,
    }
    present = {k: v for k, v in claims.items() if v}
    return present if present else None


#: A resolved user's cache key: tenant, issuer, subject and the claims a sign-in sent.
_UserKey = tuple[str, str, str, tuple[tuple[str, str], ...]]


class ToolCalls:
    def __init__(
        self,
        workers: WorkerPool,
        metrics: Metrics,
        revocations: Revocations,
        *,
        user_cache_size: int,
        links: Callable[[Tenant], FileLinks] | None = None,
    ) -> None:
        self._workers = workers
        self._metrics = metrics
        self._revocations = revocations
        #: The signed links to a tenant's files (``gateway.files.Links.of``).
        self._links = links
        self._users: OrderedDict[_UserKey, UserId] = OrderedDict()
        self._user_cache_size = user_cache_size

    @staticmethod
    def _key(ctx: CallContext, claims: dict[str, str] | None) -> _UserKey:
        """What a cached user is found by: with the claims the worker last saw of them, so
        a changed name, email or organisation (or which of them the tenant names) misses
        and reaches the worker on the next call; unchanged ones hit, with no round trip."""
        p = ctx.principal
        return (ctx.tenant.name, p.issuer, p.subject, tuple(sorted((claims or {}).items())))

    async def _user(self, ctx: CallContext, worker: WorkerClient) -> UserId:
        claims = _claims(ctx)
        key = self._key(ctx, claims)
        found = self._users.get(key)
        if found is not None:
            self._users.move_to_end(key)
            return found
        user = await worker.resolve_user(
            ctx.principal.issuer,
            ctx.principal.subject,
            ctx.correlation_id,
            claims=claims,
        )
        self._users[key] = user
        while len(self._users) > self._user_cache_size:
            self._users.popitem(last=False)
        return user

    def _forget(self, ctx: CallContext) -> None:
        self._users.pop(self._key(ctx, _claims(ctx)), None)

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
                links = self._links(ctx.tenant) if self._links is not None else None
                try:
                    structured = await self._run(spec, arguments, worker, user, cid, links)
                except UnknownUser:
                    # Erased since we cached it: resolve again (a fresh user), retry once.
                    self._forget(ctx)
                    user = await self._user(ctx, worker)
                    structured = await self._run(spec, arguments, worker, user, cid, links)
            except WorkerError as e:
                outcome = e.code
                self._metrics.upstream_errors.labels(ctx.tenant.name, e.grpc_code).inc()
                if e.code in _FAILURES:
                    tracing.fail(f"{e.code}: {e.message}")
                return self._error(e, cid)
            if spec.forgets_user:
                self._forget(ctx)
            return _result(structured)
        finally:
            elapsed = time.perf_counter() - start
            tool = name if spec is not None else "unknown"
            self._metrics.tool_calls.labels(ctx.tenant.name, tool, outcome).inc()
            exemplar = _exemplar(ctx.tenant.name, tool, outcome)
            self._metrics.tool_seconds.labels(ctx.tenant.name, tool).observe(elapsed, exemplar)
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
        for detail in ("current", "changed_by", "changed_at", "role_needed"):
            if (value := getattr(e, detail, None)) is not None:
                details[detail] = value
        return error_result(e.code, e.message, cid, retriable=e.retriable, **details)

    async def _run(
        self,
        spec: ToolSpec,
        args: dict[str, Any],
        worker: WorkerClient,
        user: UserId,
        cid: CorrelationId,
        links: FileLinks | None = None,
    ) -> dict[str, Any]:
        collection = spec.collection or args.get("collection", BUILTIN_COLLECTION)
        return await spec.operation(
            Invocation(worker, user, cid, collection, args, self._revocations, links)
        )
