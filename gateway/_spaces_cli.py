"""``stowage spaces list``: for support, a tenant's spaces and their members.

Asks the tenant's worker (``ListTenantSpaces``, page by page) and prints what
support may see: each space's id, kind, size, creation time and last change
number, and its members as handles (the pseudonyms members see of each other)
with their roles and when they joined. Never a space's name, a member's name,
email or user id, nor any object: those are the users' data. Exit 0: listed; 1:
the worker refused or could not be reached (the reason on stderr); 2: bad
arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from dataclasses import dataclass
from typing import Any

from stowage.runtime import config
from stowage.runtime.config import Setting


@dataclass(frozen=True)
class SpacesSettings:
    """Where ``stowage spaces`` finds the worker; :data:`SETTINGS` documents each."""

    worker: str
    timeout: float = 10.0


#: Every ``stowage spaces`` setting.
SETTINGS: tuple[Setting, ...] = (
    Setting(
        "worker", "STOWAGE_SPACES_WORKER", "the tenant worker's gRPC address", metavar="HOST:PORT"
    ),
    Setting("timeout", "STOWAGE_SPACES_TIMEOUT", "seconds to wait for each answer", config.number),
)

#: Spaces asked for at a time (the worker answers at most 1000).
PAGE = 200


def register(subparsers: config.Subparsers) -> None:
    commands = config.add_group(
        subparsers, "spaces", help="support: a tenant's shared spaces and members"
    )
    listing = config.add_command(commands, "list", _list, SETTINGS, SpacesSettings)
    listing.add_argument("--tenant", required=True, help="the tenant's name")
    listing.add_argument(
        "--json", action="store_true", help="one JSON object per space instead of a table"
    )


def _fail(message: str, code: int) -> int:
    print(f"stowage spaces: {message}", file=sys.stderr)
    return code


def _list(args: argparse.Namespace) -> int:
    """The tenant's spaces and members (handles, roles, sizes), never contents or names.

    Spaces in id order, each with its kind (space, or org for an organisation's
    space), members, objects, bytes, creation time and last change number,
    followed by its members: handle, role, joined. Handles are the stable
    pseudonyms members see of each other (in spaces_get); a user's own
    spaces_get shows which handle is theirs.
    """
    import anyio

    settings = config.from_args(SpacesSettings, SETTINGS, args, os.environ)
    return anyio.run(_list_async, settings, args.tenant, args.json)


_HEADER = (
    f"{'SPACE':<32}  {'KIND':<5}  {'MEMBERS':>7}  {'OBJECTS':>8}  {'BYTES':>12}  "
    f"{'CREATED':<25}  {'LAST CHANGE':>11}"
)


def _row(space: dict[str, Any]) -> str:
    return (
        f"{space['id']}  {space['kind']:<5}  {len(space['members']):>7}  {space['objects']:>8}  "
        f"{space['bytes']:>12}  {space['created_at']:<25}  {space['last_change']:>11}"
    )


def _shown(space: dict[str, Any]) -> dict[str, Any]:
    """What support sees of a space: no name (the worker sends none; this keeps it so)."""
    return {
        "id": space["id"],
        "kind": space["kind"],
        "objects": space["objects"],
        "bytes": space["bytes"],
        "created_at": space["created_at"],
        "last_change": space["last_change"],
        "members": [
            {"member": m["member"], "role": m["role"], "joined_at": m["joined_at"]}
            for m in space["members"]
        ],
    }


async def _list_async(settings: SpacesSettings, tenant: str, as_json: bool) -> int:
    from gateway._errors import WorkerError
    from gateway._types import CorrelationId
    from gateway.forwarding._worker import WorkerClient

    worker = WorkerClient(settings.worker, tenant, timeout=settings.timeout)
    cid = CorrelationId(f"spaces-{uuid.uuid4().hex[:12]}")
    after, more, count = "", True, 0
    try:
        while more:
            page, more = await worker.list_tenant_spaces(cid, after_id=after, limit=PAGE)
            if count == 0 and not as_json:
                print(_HEADER)
            for space in map(_shown, page):
                count += 1
                after = space["id"]
                if as_json:
                    print(json.dumps(space))
                    continue
                print(_row(space))
                for m in space["members"]:
                    print(f"  {m['member']}  {m['role']:<6}  joined {m['joined_at']}")
            more = more and bool(page)
    except WorkerError as e:
        return _fail(f"cannot list the spaces of {tenant}: {e.message}", 1)
    finally:
        await worker.close()
    if not as_json:
        print(f"{count} space(s) of tenant {tenant}")
    return 0
