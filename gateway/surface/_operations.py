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

from gateway._errors import LinksUnavailable
from gateway._types import CorrelationId, Revocation, UserId
from gateway.forwarding._worker import WorkerClient


class OwnRevocations(Protocol):
    """How the calling user ends their own access (``gateway.auth._revocations.Revocations``)."""

    async def revoke_own(
        self, worker: WorkerClient, user: UserId, cid: CorrelationId
    ) -> Revocation: ...


class FileLinks(Protocol):
    """Signed links to one tenant's files (``gateway.files.Links.of``); a link lasts minutes.

    Each returns ``{"url", "method", "expires_at"}``; raises
    :class:`gateway._errors.LinksUnavailable` when the tenant's key is missing.
    """

    def upload(self, user: UserId, file_id: str, size: int, sha256: str) -> dict[str, Any]: ...

    def download(self, user: UserId, file_id: str) -> dict[str, Any]: ...

    def export(self, user: UserId) -> dict[str, Any]: ...


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
    #: Links to the tenant's files (None: this gateway signs none).
    links: FileLinks | None = None

    def file_links(self) -> FileLinks:
        if self.links is None:
            raise LinksUnavailable("this gateway serves no file links")
        return self.links

    def whole(self, name: str, default: int | None = None) -> int | None:
        """An integer argument as an ``int`` (JSON Schema also accepts ``3.0`` as integer)."""
        value = self.args.get(name, default)
        return None if value is None else int(value)


Operation = Callable[[Invocation], Awaitable[dict[str, Any]]]


def _with_file_links(call: Invocation, result: dict[str, Any]) -> dict[str, Any]:
    """``result`` with a download link on each uploaded file its objects name (an object
    without files costs nothing here)."""
    objects = [result["object"]] if "object" in result else result.get("objects", [])
    for obj in objects:
        for file in obj.get("files", ()):
            if file["status"] == "ready":
                file["download"] = call.file_links().download(call.user, file["id"])
    return result


async def save(call: Invocation) -> dict[str, Any]:
    saved = await call.worker.put_object(
        call.user,
        call.cid,
        collection=call.collection,
        object_id=call.args.get("id", ""),
        data=call.args["data"],
        expected_version=call.whole("expected_version"),
        idempotency_key=call.args.get("idempotency_key", ""),
        ttl_seconds=call.whole("ttl_seconds") or 0,
        files=call.args.get("files", ()),
    )
    return _with_file_links(call, saved)


async def get(call: Invocation) -> dict[str, Any]:
    found = await call.worker.get_object(
        call.user, call.cid, collection=call.collection, object_id=call.args["id"]
    )
    return _with_file_links(call, found)


async def list_page(call: Invocation) -> dict[str, Any]:
    page = await call.worker.list_objects(
        call.user,
        call.cid,
        collection=call.collection,
        page_size=call.whole("page_size") or 0,
        cursor=call.args.get("cursor", ""),
    )
    return _with_file_links(call, page)


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
    exported = await call.worker.export_user_data(call.user, call.cid)
    try:
        links = call.file_links()
        for file in exported.get("files", ()):
            if file["version"] > 0:
                file["download"] = links.download(call.user, file["id"])
        exported["archive"] = links.export(call.user)
    except LinksUnavailable:
        pass  # the export stands without links: each file's metadata and sha256 are in it
    return exported


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


# --- shared spaces: the worker checks membership and role on every call ------------------


async def space_create(call: Invocation) -> dict[str, Any]:
    return await call.worker.create_space(call.user, call.cid, name=call.args["name"])


async def space_list(call: Invocation) -> dict[str, Any]:
    return await call.worker.list_spaces(call.user, call.cid)


async def space_get(call: Invocation) -> dict[str, Any]:
    return await call.worker.get_space(call.user, call.cid, space=call.args["space"])


async def space_invite(call: Invocation) -> dict[str, Any]:
    return await call.worker.invite_member(
        call.user,
        call.cid,
        space=call.args["space"],
        invitee=call.args.get("user", ""),
        email=call.args.get("email", ""),
        role=call.args.get("role", "editor"),
    )


async def space_set_role(call: Invocation) -> dict[str, Any]:
    return await call.worker.set_member_role(
        call.user,
        call.cid,
        space=call.args["space"],
        member=call.args["member"],
        role=call.args["role"],
    )


async def space_remove(call: Invocation) -> dict[str, Any]:
    return await call.worker.remove_member(
        call.user, call.cid, space=call.args["space"], member=call.args["member"]
    )


async def space_leave(call: Invocation) -> dict[str, Any]:
    return await call.worker.leave_space(call.user, call.cid, space=call.args["space"])


async def space_changes(call: Invocation) -> dict[str, Any]:
    return await call.worker.list_space_changes(
        call.user,
        call.cid,
        space=call.args["space"],
        cursor=call.args.get("cursor", ""),
        limit=call.whole("limit") or 0,
    )


async def space_save(call: Invocation) -> dict[str, Any]:
    saved = await call.worker.put_space_object(
        call.user,
        call.cid,
        space=call.args["space"],
        collection=call.collection,
        object_id=call.args.get("id", ""),
        data=call.args["data"],
        expected_version=call.whole("expected_version"),
        idempotency_key=call.args.get("idempotency_key", ""),
        ttl_seconds=call.whole("ttl_seconds") or 0,
        files=call.args.get("files", ()),
    )
    return _with_file_links(call, saved)


async def space_object_get(call: Invocation) -> dict[str, Any]:
    found = await call.worker.get_space_object(
        call.user,
        call.cid,
        space=call.args["space"],
        collection=call.collection,
        object_id=call.args["id"],
    )
    return _with_file_links(call, found)


async def space_object_list(call: Invocation) -> dict[str, Any]:
    page = await call.worker.list_space_objects(
        call.user,
        call.cid,
        space=call.args["space"],
        collection=call.collection,
        page_size=call.whole("page_size") or 0,
        cursor=call.args.get("cursor", ""),
    )
    return _with_file_links(call, page)


async def space_object_delete(call: Invocation) -> dict[str, Any]:
    return await call.worker.delete_space_object(
        call.user,
        call.cid,
        space=call.args["space"],
        collection=call.collection,
        object_id=call.args["id"],
        expected_version=call.whole("expected_version"),
        idempotency_key=call.args.get("idempotency_key", ""),
    )


# --- files: the bytes move through signed links, never through the model -------------------


def _with_download(call: Invocation, file: dict[str, Any]) -> dict[str, Any]:
    if file["version"] == 0:
        return {"file": file}
    return {"file": file, "download": call.file_links().download(call.user, file["id"])}


async def files_create_upload(call: Invocation) -> dict[str, Any]:
    links = call.file_links()  # before the worker creates anything: no key, no file
    size = call.whole("size") or 0
    sha256 = str(call.args.get("sha256", "")).lower()
    file = await call.worker.create_file(
        call.user,
        call.cid,
        name=call.args["name"],
        content_type=call.args["content_type"],
        size=size,
        file_id=call.args.get("id", ""),
        ttl_seconds=call.whole("ttl_seconds") or 0,
        space=call.args.get("space", ""),
    )
    upload = links.upload(call.user, file["id"], size, sha256)
    upload["headers"] = {"content-type": file["declared_type"]}
    upload["size"] = size
    return {"file": file, "upload": upload}


async def files_get(call: Invocation) -> dict[str, Any]:
    file = await call.worker.get_file(call.user, call.cid, file_id=call.args["id"])
    linked = {
        "linked_from": file.pop("linked_from"),
        "more_linked_from": file.pop("more_linked_from"),
    }
    return {**_with_download(call, file), **linked}


async def files_list(call: Invocation) -> dict[str, Any]:
    return await call.worker.list_files(
        call.user,
        call.cid,
        page_size=call.whole("page_size") or 0,
        cursor=call.args.get("cursor", ""),
        space=call.args.get("space", ""),
    )


async def files_delete(call: Invocation) -> dict[str, Any]:
    file = await call.worker.delete_file(call.user, call.cid, file_id=call.args["id"])
    return {"deleted": file}
