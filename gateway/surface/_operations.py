"""What each tool does at the worker: one coroutine per operation. No HTTP or MCP here.

A tool's row in :mod:`gateway.surface._tool_table` names its operation, so a tool cannot
be declared without one (the row would not type-check, or build). An operation
gets the call's :class:`Invocation` (the worker, the user, the arguments the
tool's schema and :mod:`stowage.values` accepted) and returns the structured
result; a worker outcome it cannot give is raised as a
:class:`gateway._errors.WorkerError`, which the caller turns into a tool error.

Adding a tool: a row in the table with an operation here; when it needs a new
worker RPC, that RPC in ``proto/``, a :class:`gateway.forwarding._worker.WorkerClient`
method, and its handler in the worker's servicer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from gateway._types import CorrelationId, Revocation, UserId
from gateway.forwarding._worker import WorkerClient


class OwnRevocations(Protocol):
    """How the calling user ends their own access (``gateway.auth._revocations.Revocations``)."""

    async def revoke_own(
        self, worker: WorkerClient, user: UserId, cid: CorrelationId
    ) -> Revocation: ...


@dataclass(frozen=True)
class Invocation:
    """One tool call as an operation sees it: who, where, with what."""

    worker: WorkerClient
    user: UserId
    cid: CorrelationId
    #: The collection the tool acts on (its own, or the ``collection`` argument).
    collection: str
    args: Mapping[str, Any]
    revocations: OwnRevocations

    def whole(self, name: str, default: int | None = None) -> int | None:
        """An integer argument as an ``int`` (JSON Schema also accepts ``3.0`` as integer)."""
        value = self.args.get(name, default)
        return None if value is None else int(value)


Operation = Callable[[Invocation], Awaitable[dict[str, Any]]]


async def save(call: Invocation) -> dict[str, Any]:
    return await call.worker.put_object(
        call.user,
        call.cid,
        collection=call.collection,
        object_id=call.args.get("id", ""),
        data=call.args["data"],
        expected_version=call.whole("expected_version"),
        idempotency_key=call.args.get("idempotency_key", ""),
        ttl_seconds=call.whole("ttl_seconds") or 0,
    )


async def get(call: Invocation) -> dict[str, Any]:
    return await call.worker.get_object(
        call.user, call.cid, collection=call.collection, object_id=call.args["id"]
    )


async def list_page(call: Invocation) -> dict[str, Any]:
    return await call.worker.list_objects(
        call.user,
        call.cid,
        collection=call.collection,
        page_size=call.whole("page_size") or 0,
        cursor=call.args.get("cursor", ""),
    )


async def delete(call: Invocation) -> dict[str, Any]:
    return await call.worker.delete_object(
        call.user,
        call.cid,
        collection=call.collection,
        object_id=call.args["id"],
        expected_version=call.whole("expected_version"),
        idempotency_key=call.args.get("idempotency_key", ""),
    )


async def preferences_get(call: Invocation) -> dict[str, Any]:
    return await call.worker.get_preferences(call.user, call.cid)


async def preferences_update(call: Invocation) -> dict[str, Any]:
    return await call.worker.update_preferences(
        call.user,
        call.cid,
        patch=call.args["patch"],
        expected_version=call.whole("expected_version"),
        idempotency_key=call.args.get("idempotency_key", ""),
    )


async def usage(call: Invocation) -> dict[str, Any]:
    return await call.worker.get_usage(call.user, call.cid)


async def export(call: Invocation) -> dict[str, Any]:
    return await call.worker.export_user_data(call.user, call.cid)


async def erase(call: Invocation) -> dict[str, Any]:
    return await call.worker.erase_user_data(call.user, call.cid)


async def revoke_access(call: Invocation) -> dict[str, Any]:
    revocation = await call.revocations.revoke_own(call.worker, call.user, call.cid)
    when = datetime.fromtimestamp(revocation.revoked_before, UTC).isoformat()
    return {
        "revoked_before": when,
        "message": "Access revoked: every sign-in to this app until now has ended. "
        "Connect the app again to use it.",
    }
