"""The check's one adapter: the ``mcp`` client over streamable HTTP with a bearer token.

Library errors (``MCPError``, ``httpx2`` transport errors, the client's
output-schema check) are translated here into ``ConnectFailed`` (the check
cannot start) and ``CallFailed`` (one tool call failed below the tool level),
chained with ``from``, so the steps above handle only this package's types.
The token goes into the Authorization header and nowhere else.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from stowage.wire import TOOL_ERROR_META_KEY

log = logging.getLogger(__name__)

#: The built-in tools the check needs; without them the URL is not a Stowage tenant.
REQUIRED_TOOLS = ("items_save", "items_get", "my_data_export", "my_data_erase")
_CHALLENGE_ERROR = re.compile(r'error="([^"]*)"')
_CHALLENGE_DESCRIPTION = re.compile(r'error_description="([^"]*)"')
#: Most seconds the check waits on a rate limit's Retry-After before calling again.
_MAX_RATE_LIMIT_WAIT = 10.0


class DogfoodError(Exception):
    """Base of the check's own errors; the message is for the person running it."""


class ConnectFailed(DogfoodError):
    """The endpoint could not be reached, refused the token, or is not a Stowage tenant."""


class TokenRefused(ConnectFailed):
    """The gateway refused the token in the middle of the check (HTTP 401 or 403)."""


class CallFailed(DogfoodError):
    """A tool call failed below the tool level (HTTP, JSON-RPC or its result's shape)."""


@dataclass(frozen=True)
class ToolAnswer:
    """A tool result: ``ok`` is False for a domain error (``isError``)."""

    ok: bool
    body: Mapping[str, Any]

    @property
    def error_code(self) -> str | None:
        error = self.body.get("error")
        return str(error.get("code")) if isinstance(error, Mapping) else None

    @property
    def error_message(self) -> str:
        error = self.body.get("error")
        return str(error.get("message", "")) if isinstance(error, Mapping) else ""

    def describe_error(self) -> str:
        return f"{self.error_code or 'error'}: {self.error_message or dict(self.body)}"


@dataclass
class _LastRefusal:
    """The most recent HTTP error status, kept to explain the SDK's generic errors."""

    status: int = 0
    challenge: str = ""
    retry_after: str = ""

    async def record(self, response: httpx2.Response) -> None:
        if response.status_code >= 400:
            self.status = response.status_code
            self.challenge = response.headers.get("www-authenticate", "")
            self.retry_after = response.headers.get("retry-after", "")

    def clear(self) -> None:
        self.status, self.challenge, self.retry_after = 0, "", ""

    def explain(self) -> str:
        if not self.status:
            return ""
        if self.status in (401, 403) and self.challenge:
            error = _CHALLENGE_ERROR.search(self.challenge)
            description = _CHALLENGE_DESCRIPTION.search(self.challenge)
            parts = [m.group(1) for m in (error, description) if m]
            return f"HTTP {self.status} {': '.join(parts) or self.challenge}"
        if self.status == 404:
            return "HTTP 404: no such tenant at this URL (check the tenant name in /t/<tenant>/mcp)"
        return f"HTTP {self.status}"


@dataclass
class McpSession:
    """Tool calls against one tenant, with the tools its ``tools/list`` offered."""

    client: Client
    refusal: _LastRefusal
    tools: Mapping[str, types.Tool] = field(default_factory=dict)

    async def call(self, name: str, arguments: Mapping[str, Any]) -> ToolAnswer:
        """Call a tool once (again after a rate limit's Retry-After, if short)."""
        for attempt in range(2):
            self.refusal.clear()
            try:
                result = await self.client.call_tool(name, dict(arguments))
            except MCPError as e:
                wait = _retry_after(e, self.refusal)
                if attempt == 0 and wait is not None and wait <= _MAX_RATE_LIMIT_WAIT:
                    log.info("rate limited; calling %s again in %.0f s", name, wait)
                    await anyio.sleep(wait)
                    continue
                if self.refusal.status in (401, 403):
                    why = _connect_refusal(self.refusal, e.message)
                    raise TokenRefused(f"{name} was refused: {why}") from e
                raise CallFailed(_call_error(name, e, self.refusal)) from e
            except RuntimeError as e:  # the SDK's check of structuredContent against outputSchema
                raise CallFailed(f"{name}: {_first_line(e)}") from e
            except Exception as e:
                cause = _cause(e)
                if not isinstance(cause, httpx2.HTTPError):
                    raise
                raise CallFailed(f"{name}: transport error: {_first_line(cause)}") from e
            body = _error_details(result) if result.is_error else result.structured_content
            return ToolAnswer(ok=not result.is_error, body=body if isinstance(body, dict) else {})
        raise AssertionError("unreachable")


def _error_details(result: types.CallToolResult) -> Any:
    """A tool error's JSON: in ``_meta`` under the platform's key, the same as its text."""
    found = (result.meta or {}).get(TOOL_ERROR_META_KEY)
    if found is not None:
        return found
    text = next((c.text for c in result.content if isinstance(c, types.TextContent)), "")
    try:
        return json.loads(text)
    except ValueError:
        return {"error": {"code": "unknown", "message": text}}


def _retry_after(error: MCPError, refusal: _LastRefusal) -> float | None:
    if refusal.status != 429:
        return None
    data = error.data if isinstance(error.data, Mapping) else {}
    raw = data.get("retry_after_seconds", refusal.retry_after)
    try:
        return float(raw)
    except (TypeError, ValueError):
        return None


def _call_error(name: str, error: MCPError, refusal: _LastRefusal) -> str:
    why = refusal.explain()
    return f"{name}: {error.message}" + (f" ({why})" if why else "")


@asynccontextmanager
async def connect(
    url: str, token: str, *, http_timeout: float, correlation_id: str
) -> AsyncIterator[McpSession]:
    """A connected session that has listed the tenant's tools; ConnectFailed says why not."""
    refusal = _LastRefusal()
    headers = {"Authorization": f"Bearer {token}", "X-Request-Id": correlation_id}
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(
            httpx2.AsyncClient(
                headers=headers, timeout=http_timeout, event_hooks={"response": [refusal.record]}
            )
        )
        try:
            client = await stack.enter_async_context(
                Client(streamable_http_client(url, http_client=http))
            )
            listed = await client.list_tools()
        except Exception as e:  # the SDK raises from task groups: look inside
            cause = _cause(e)
            if isinstance(cause, MCPError):
                why = _connect_refusal(refusal, cause.message)
                raise ConnectFailed(f"{url} refused the connection: {why}") from e
            if isinstance(cause, httpx2.TimeoutException):
                raise ConnectFailed(f"no answer from {url} within {http_timeout:g} s") from e
            if isinstance(cause, httpx2.HTTPError):
                raise ConnectFailed(f"cannot reach {url}: {_first_line(cause)}") from e
            raise
        session = McpSession(client, refusal, {t.name: t for t in listed.tools})
        missing = [name for name in REQUIRED_TOOLS if name not in session.tools]
        if missing:
            raise ConnectFailed(
                f"{url} answers MCP but offers no {', '.join(missing)}: "
                "is it a Stowage tenant's MCP URL?"
            )
        yield session


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _cause(error: BaseException) -> BaseException:
    """The first leaf of (nested) exception groups, or the error itself."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def _connect_refusal(refusal: _LastRefusal, message: str) -> str:
    why = refusal.explain()
    if refusal.status == 401:
        return f"the token was not accepted ({why})"
    if refusal.status == 403:
        return f"the token lacks a scope the check needs ({why})"
    if refusal.status and refusal.status != 404:
        return f"{why}; is this a tenant's MCP URL, https://<gateway>/t/<tenant>/mcp?"
    return why or message
