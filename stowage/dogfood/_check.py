"""The storage-path check: small named steps, walked in order by one loop.

Each step calls the tenant's tools as any MCP client would and returns a
sentence saying what it proved, or raises ``StepFailed`` (the platform did not
behave as promised) or ``NotApplicable`` (the tenant offers nothing to check,
with the reason). After a failure the remaining steps are skipped: they build
on the earlier ones. Every object the check writes has an id starting with
``dogfood-``; the run's objects are erased by the ``erase`` step.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import anyio
from jsonschema import Draft202012Validator

from stowage.dogfood._sample import NoSample, sample_object
from stowage.dogfood._session import (
    CallFailed,
    ConnectFailed,
    DogfoodError,
    McpSession,
    TokenRefused,
    ToolAnswer,
    connect,
)
from stowage.dogfood._settings import DogfoodSettings

BUILTIN = "items"
#: Objects left in each declared collection for the next run's schema-upgrade read.
CANARY_PREFIX = "dogfood-canary-v"
#: Pages of a collection the check reads while looking for canaries.
_MAX_PAGES = 10
#: Seconds past the deadline allowed for closing the connection.
_CLOSE_GRACE = 5.0


class Status(StrEnum):
    PASSED = "PASS"
    FAILED = "FAIL"
    NOT_APPLICABLE = "N/A"
    SKIPPED = "SKIP"


@dataclass(frozen=True)
class StepResult:
    step: str
    status: Status
    detail: str


class StepFailed(DogfoodError):
    """The tenant did not behave as the platform promises; the message says how."""


class NotApplicable(DogfoodError):
    """The tenant offers nothing this step could check; the message says why."""


@dataclass(frozen=True)
class Collection:
    """A collection the tenant declares, as its typed tools describe it."""

    name: str
    data_schema: Mapping[str, Any]


@dataclass
class Run:
    """What the steps of one run share."""

    session: McpSession
    run_id: str
    max_object_bytes: int
    collections: tuple[Collection, ...]
    #: (collection, id) of every object this run wrote and expects to export.
    written: set[tuple[str, str]] = field(default_factory=set)
    #: Current schema version and a sample object, per declared collection written to.
    current: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)

    def object_id(self, what: str) -> str:
        return f"{self.run_id}-{what}"

    async def call(self, tool: str, **arguments: Any) -> ToolAnswer:
        return await self.session.call(tool, arguments)

    async def ok(self, tool: str, **arguments: Any) -> Mapping[str, Any]:
        """Call a tool that must succeed; StepFailed with its error otherwise."""
        answer = await self.call(tool, **arguments)
        if not answer.ok:
            raise StepFailed(f"{tool} answered {answer.describe_error()}")
        return answer.body

    async def refused(self, tool: str, code: str, **arguments: Any) -> ToolAnswer:
        """Call a tool that must fail with ``code``; StepFailed otherwise."""
        answer = await self.call(tool, **arguments)
        if answer.ok:
            raise StepFailed(f"{tool} succeeded where a {code} error was expected")
        if answer.error_code != code:
            raise StepFailed(f"{tool} answered {answer.describe_error()}, expected {code}")
        return answer


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise StepFailed(message)


def declared_collections(session: McpSession) -> tuple[Collection, ...]:
    """Collections with typed tools (``<name>_save`` with a ``data`` schema), from tools/list."""
    found = []
    for name, tool in session.tools.items():
        prefix = name.removesuffix("_save")
        if prefix in (name, BUILTIN):
            continue
        if not {f"{prefix}_get", f"{prefix}_list"} <= session.tools.keys():
            continue
        properties = tool.input_schema.get("properties") or {}
        data = properties.get("data")
        if isinstance(data, dict) and "collection" not in properties:
            found.append(Collection(prefix, data))
    return tuple(sorted(found, key=lambda c: c.name))


# -- the steps -------------------------------------------------------------------------------


async def save(run: Run) -> str:
    oid = run.object_id("object")
    data = {"dogfood": run.run_id, "step": "save"}
    saved = await run.ok("items_save", id=oid, data=data, expected_version=0)
    run.written.add((BUILTIN, oid))
    obj = saved["object"]
    expect(saved.get("created") is True, f"items_save of a new id answered created={saved}")
    expect(obj["version"] == 1, f"a new object has version {obj['version']}, not 1")
    got = (await run.ok("items_get", id=oid))["object"]
    expect(got["data"] == data, f"items_get returned {got['data']!r}, not what was saved")
    return f"items/{oid} created at version 1 and read back unchanged"


async def conflict(run: Run) -> str:
    oid = run.object_id("object")
    data = {"dogfood": run.run_id, "step": "conflict"}
    updated = (await run.ok("items_save", id=oid, data=data, expected_version=1))["object"]
    expect(updated["version"] == 2, f"a write at version 1 made version {updated['version']}")
    stale = await run.refused(
        "items_save", "conflict", id=oid, data={"stale": True}, expected_version=1
    )
    current = stale.body["error"].get("current") or {}
    expect(
        current.get("version") == 2 and current.get("data") == data,
        f"the conflict does not carry the current object (version 2): {current!r}",
    )
    got = (await run.ok("items_get", id=oid))["object"]
    expect(got["version"] == 2, f"the refused write changed the object to {got!r}")
    return "a write with stale expected_version 1 was refused; the conflict carries version 2"


async def replay(run: Run) -> str:
    oid = run.object_id("replay")
    args = {
        "id": oid,
        "data": {"dogfood": run.run_id, "step": "replay"},
        "idempotency_key": run.object_id("replay-key"),
    }
    first = await run.ok("items_save", **args)
    run.written.add((BUILTIN, oid))
    again = await run.ok("items_save", **args)
    expect(again.get("replayed") is True, f"the repeated call was not a replay: {again!r}")
    expect(
        again["object"] == first["object"] and again.get("created") == first.get("created"),
        f"the replay answered {again['object']!r}, not the first result {first['object']!r}",
    )
    got = (await run.ok("items_get", id=oid))["object"]
    expect(got["version"] == 1, f"the replay wrote again: the object is at {got['version']}")
    return "the same idempotency key returned the first result; the object stayed at version 1"


async def quota(run: Run) -> str:
    oid = run.object_id("oversize")
    # {"padding":"…"} encodes to the limit plus 14 bytes: just over maxObjectBytes.
    data = {"padding": "x" * run.max_object_bytes}
    size = run.max_object_bytes + len('{"padding":""}')
    answer = await run.call("items_save", id=oid, data=data)
    if answer.ok:
        run.written.add((BUILTIN, oid))
        raise StepFailed(
            f"a {size}-byte object was accepted: the tenant's quotas.maxObjectBytes is above "
            f"{run.max_object_bytes} bytes (pass --max-object-bytes) or is not enforced"
        )
    expect(
        answer.error_code == "quota_exceeded",
        f"a {size}-byte object was refused with {answer.describe_error()}, not quota_exceeded",
    )
    await run.refused("items_get", "not_found", id=oid)
    return f"a {size}-byte object was refused: {answer.error_message}"


async def older_schema_read(run: Run) -> str:
    if not run.collections:
        raise NotApplicable(
            "the tenant declares no collection with a JSON Schema (tools/list has only the "
            "built-in items tools); items is schemaless and always at schema version 1, so no "
            "object can be stored under an older schema version"
        )
    notes: list[str] = []
    failures: list[str] = []
    upgraded = 0
    for collection in run.collections:
        try:
            note, exercised = await _read_canaries(run, collection)
        except StepFailed as e:
            failures.append(f"{collection.name}: {e}")
            continue
        except NotApplicable as e:
            note, exercised = f"{collection.name}: {e}", False
        notes.append(note)
        upgraded += exercised
    if failures:
        raise StepFailed("; ".join(failures + notes))
    if not upgraded:
        raise NotApplicable("; ".join(notes))
    return "; ".join(notes)


async def _read_canaries(run: Run, collection: Collection) -> tuple[str, bool]:
    """Write this run's object, then read the canaries earlier runs left."""
    name = collection.name
    try:
        sample = sample_object(collection.data_schema)
    except NoSample as e:
        raise NotApplicable(f"no object its schema accepts could be built ({e})") from e
    oid = run.object_id(name)
    saved = (await run.ok(f"{name}_save", id=oid, data=sample, expected_version=0))["object"]
    run.written.add((name, oid))
    current = int(saved["schema_version"])
    run.current[name] = (current, sample)
    try:
        canaries = await _canary_ids(run, name)
    except CallFailed as e:
        raise StepFailed(
            f"reading its objects, canaries stored at older schema versions and upgraded, "
            f"failed: {e}"
        ) from e
    if not canaries:
        raise NotApplicable(
            f"no canary from an earlier run yet (first run, or it expired or was erased); this "
            f"run leaves one at schema version {current}, read back once schemaVersion is raised"
        )
    validator = Draft202012Validator(dict(collection.data_schema))
    read: list[str] = []
    exercised = False
    for cid in canaries:
        stored = int(cid.removeprefix(CANARY_PREFIX))
        try:
            got = (await run.ok(f"{name}_get", id=cid))["object"]
        except CallFailed as e:
            raise StepFailed(f"{cid}, stored at schema version {stored}: {e}") from e
        expect(
            stored <= current,
            f"{cid} was stored at schema version {stored}, above the current {current}: "
            "was schemaVersion lowered?",
        )
        expect(
            got["schema_version"] == current,
            f"{cid} (stored at version {stored}) was read at version {got['schema_version']}, "
            f"not the current {current}",
        )
        problem = next(iter(validator.iter_errors(got["data"])), None)
        expect(
            problem is None,
            f"{cid} upgraded from version {stored} does not match the current schema: "
            f"{problem.message if problem else ''}",
        )
        exercised = exercised or stored < current
        read.append(f"{cid} (stored at {stored})")
    if not exercised:
        raise NotApplicable(
            f"still at schema version {current}, as its canary {', '.join(canaries)}; no upgrade "
            "to read until schemaVersion is raised"
        )
    return f"{name}: {', '.join(read)} read back at schema version {current}, valid", True


async def _canary_ids(run: Run, collection: str) -> list[str]:
    ids: list[str] = []
    cursor: str | None = None
    for _ in range(_MAX_PAGES):
        args: dict[str, Any] = {"page_size": 200}
        if cursor:
            args["cursor"] = cursor
        page = await run.ok(f"{collection}_list", **args)
        ids += [o["id"] for o in page["objects"] if o["id"].startswith(CANARY_PREFIX)]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    return sorted(i for i in ids if i.removeprefix(CANARY_PREFIX).isdigit())


async def export(run: Run) -> str:
    exported = await run.ok("my_data_export")
    have = {(o["collection"], o["id"]) for o in exported["objects"]}
    missing = sorted(run.written - have)
    expect(not missing, f"the export lacks this run's objects {missing}")
    oversize = (BUILTIN, run.object_id("oversize"))
    expect(oversize not in have, "the export holds the object the quota refused")
    return f"{len(have)} objects exported, including this run's {len(run.written)}"


async def erase(run: Run) -> str:
    erased = await run.ok("my_data_erase", confirm=True)
    deleted = int(erased["objects_deleted"])
    expect(
        deleted >= len(run.written),
        f"erase deleted {deleted} objects, fewer than this run's {len(run.written)}",
    )
    after = await run.ok("my_data_export")
    expect(after["objects"] == [], f"after erase the export still holds {after['objects']!r}")
    await run.refused("items_get", "not_found", id=run.object_id("object"))
    return f"the test user's {deleted} objects erased; an export afterwards holds none"


async def leave_canary(run: Run) -> str:
    if not run.current:
        raise NotApplicable(
            "no declared collection was written to, so there is nothing to leave for the "
            "next run's schema-upgrade read"
        )
    left = []
    for name, (version, sample) in sorted(run.current.items()):
        cid = f"{CANARY_PREFIX}{version}"
        saved = (await run.ok(f"{name}_save", id=cid, data=sample))["object"]
        expect(
            saved["schema_version"] == version,
            f"{name} moved to schema version {saved['schema_version']} during the run",
        )
        left.append(f"{name}/{cid}")
    return (
        f"left {', '.join(left)} (the test user's only data) for the next run to read "
        "back after a schema change"
    )


Step = Callable[[Run], Awaitable[str]]

STEPS: tuple[tuple[str, Step], ...] = (
    ("save", save),
    ("conflict", conflict),
    ("replay", replay),
    ("quota", quota),
    ("older-schema", older_schema_read),
    ("export", export),
    ("erase", erase),
    ("canary", leave_canary),
)


# -- the loop --------------------------------------------------------------------------------


def new_run_id() -> str:
    return f"dogfood-{secrets.token_hex(4)}"


async def run_check(
    settings: DogfoodSettings,
    report: Callable[[StepResult], None],
    run_id: str | None = None,
) -> list[StepResult]:
    """Connect, then run every step, reporting each result as it is known.

    Raises ConnectFailed when the check cannot run: the endpoint cannot be
    reached or is not a tenant's, or the token is refused (TokenRefused).
    """
    run_id = run_id or new_run_id()
    deadline = time.monotonic() + settings.timeout
    results: list[StepResult] = []
    refused: TokenRefused | None = None
    try:
        # The steps keep to the deadline themselves; this bounds connecting and closing.
        with anyio.fail_after(settings.timeout + _CLOSE_GRACE):
            connecting = connect(
                settings.mcp_url,
                settings.token,
                http_timeout=settings.timeout,
                correlation_id=run_id,
            )
            async with connecting as session:
                collections = declared_collections(session)
                run = Run(session, run_id, settings.max_object_bytes, collections)
                try:
                    await _walk(run, deadline, settings.timeout, results, report)
                except TokenRefused as e:
                    # Raised only once the session is closed: the SDK's task groups
                    # would wrap it on the way out.
                    refused = e
    except TimeoutError as e:
        if not results:
            raise ConnectFailed(
                f"{settings.mcp_url} did not answer within the --timeout of {settings.timeout:g} s"
            ) from e
    if refused is not None:
        raise refused
    return results


async def _walk(
    run: Run,
    deadline: float,
    budget: float,
    results: list[StepResult],
    report: Callable[[StepResult], None],
) -> None:
    """The one loop: every step in order; after a failure, the rest are skipped."""
    failed = False
    for name, step in STEPS:
        if failed:
            result = StepResult(name, Status.SKIPPED, "not run after the failure above")
        else:
            result = await _run_step(run, name, step, deadline, budget)
            failed = result.status is Status.FAILED
        results.append(result)
        report(result)


async def _run_step(run: Run, name: str, step: Step, deadline: float, budget: float) -> StepResult:
    try:
        with anyio.fail_after(max(0.0, deadline - time.monotonic())):
            detail = await step(run)
    except TimeoutError:
        return StepResult(name, Status.FAILED, f"no answer within the --timeout of {budget:g} s")
    except NotApplicable as e:
        return StepResult(name, Status.NOT_APPLICABLE, str(e))
    except (StepFailed, CallFailed) as e:
        return StepResult(name, Status.FAILED, " ".join(str(e).split()))
    except (KeyError, TypeError, ValueError) as e:
        return StepResult(name, Status.FAILED, f"unexpected result shape: {type(e).__name__}: {e}")
    return StepResult(name, Status.PASSED, detail)
