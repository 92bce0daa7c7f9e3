"""The Notes component in a real browser, through the official host side, against the real platform.

Headless Chromium (Debian's) loads a host page built on ext-apps' ``AppBridge``
and the MCP TypeScript client; the page connects to a real gateway (worker,
PostgreSQL) with a real token, calls ``notes_save``, reads the tool's linked
``ui://`` resource and renders it in a sandboxed iframe on another origin.
``host/drive.mjs`` (playwright-core) drives the component step by step; between
steps this test reads and changes the note through the gateway as another
session of the same user, and judges what the browser saw.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from stowage.wire import TOOL_ERROR_META_KEY
from stowage_testing.gateway import GatewayProcess, Issuer, post, rpc
from stowage_testing.tools import kill_with_descendants
from tests.components.conftest import TENANT, Origins
from tests.components.tools import REPO, ComponentTools

pytestmark = [pytest.mark.postgres]

DRIVER = REPO / "tests" / "components" / "host" / "drive.mjs"
#: How long the driver waits for any one condition in the browser, and this test for a step.
STEP_TIMEOUT = 20.0

FIRST = {"title": "Groceries", "body": "milk"}
EDIT = {"title": "Groceries for Saturday", "body": "milk, eggs, bread"}
ELSEWHERE = {"title": "Groceries (shared list)", "body": "milk, eggs, bread, flour"}
SECOND_EDIT = {"body": "milk, eggs, bread, coffee"}


class Driver:
    """``node drive.mjs``: one JSON line per step out, ``go`` in where the test has work to do."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc = proc
        self.log = log
        self._buffer = b""
        self._selector = selectors.DefaultSelector()
        assert proc.stdout is not None
        self._selector.register(proc.stdout, selectors.EVENT_READ)

    def step(self, name: str, timeout: float = STEP_TIMEOUT) -> dict[str, Any]:
        """The driver's next step, which must be ``name``."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not self._selector.select(left):
                raise AssertionError(f"no step {name!r} within {timeout}s; {self._tail()}")
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                raise AssertionError(f"the driver ended before step {name!r}; {self._tail()}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        seen: dict[str, Any] = json.loads(line)
        assert seen["step"] == name, f"step {seen['step']!r}, not {name!r}: {seen}"
        return seen

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def _tail(self) -> str:
        return f"driver log:\n{self.log.read_text()[-3000:]}" if self.log.exists() else ""


@contextmanager
def driving(tools: ComponentTools, config: dict[str, Any], log: Path) -> Iterator[Driver]:
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            [str(tools.node), str(DRIVER), json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    driver = Driver(proc, log)
    try:
        yield driver
        proc.wait(timeout=STEP_TIMEOUT)
        assert proc.returncode == 0, driver._tail()
    finally:
        if proc.poll() is None:
            kill_with_descendants(proc)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()


def call(gateway: GatewayProcess, token: str, tool: str, arguments: dict[str, Any]) -> Any:
    """One ``tools/call`` through the gateway, as another MCP client would make it."""
    body = rpc("tools/call", {"name": tool, "arguments": arguments})
    reply = post(gateway.url(TENANT), body, token)
    assert reply.status_code == 200, reply.text
    return reply.json()["result"]


def test_component_saves_meets_a_change_made_elsewhere_and_saves_again(
    gateway: GatewayProcess,
    issuer: Issuer,
    origins: Origins,
    component_tools: ComponentTools,
    artifacts: Path,
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    url = gateway.url(TENANT)
    user = f"components-{uuid.uuid4().hex[:8]}"
    # The browser's session and another of the same user (another client, another token).
    browser_token = issuer.token(url, subject=user)
    other_token = issuer.token(url, subject=user)
    host_config = {
        "url": url,
        "token": browser_token,
        "tool": "notes_save",
        "arguments": {"data": FIRST},
        "sandbox": origins.sandbox_page,
        "theme": "light",
    }
    config = {
        "deps": str(component_tools.host_modules),
        "chromium": str(component_tools.chromium),
        "hostUrl": f"{origins.host_page}#{quote(json.dumps(host_config))}",
        "artifacts": str(artifacts),
        "timeoutMs": int(STEP_TIMEOUT * 1000 * 0.75),
        "edit": EDIT,
        "secondEdit": SECOND_EDIT,
        "conflictVersion": 3,
    }
    print(f"\nscreenshots: {artifacts}")

    with driving(component_tools, config, tmp_path / "driver.log") as driver:
        # The host found the component through the tool, read it and rendered the result.
        rendered = driver.step("rendered")
        host = rendered["host"]
        uri = host["tool"]["_meta"]["ui"]["resourceUri"]
        assert uri.startswith("ui://") and host["resourceUri"] == uri
        assert host["tool"]["_meta"]["openai/outputTemplate"] == uri
        assert host["resource"]["mimeType"] == "text/html;profile=mcp-app"
        created = host["toolResult"]["structuredContent"]["object"]
        note_id = created["id"]
        assert created["version"] == 1 and created["data"] == FIRST
        assert rendered["view"]["id"] == note_id
        assert rendered["view"]["title"] == FIRST["title"]
        assert rendered["view"]["body"] == FIRST["body"]

        # The user's save in the component is in the database (read by another session).
        saved = driver.step("saved")
        assert saved["view"]["id"] == note_id and saved["view"]["version"] == "2"
        (save_call,) = saved["host"]["viewCalls"]
        assert save_call["name"] == "notes_save"
        assert save_call["arguments"] == {"id": note_id, "data": EDIT, "expected_version": 1}
        stored = call(gateway, other_token, "notes_get", {"id": note_id})["structuredContent"]
        assert stored["object"]["version"] == 2 and stored["object"]["data"] == EDIT

        # Another session changes the note; the component's next save meets that change.
        changed = call(
            gateway,
            other_token,
            "notes_save",
            {"id": note_id, "data": ELSEWHERE, "expected_version": 2},
        )
        assert changed["structuredContent"]["object"]["version"] == 3
        driver.go()
        conflict = driver.step("conflict")
        mine = {**EDIT, **SECOND_EDIT}
        assert conflict["conflict"]["theirsTitle"] == ELSEWHERE["title"]
        assert conflict["conflict"]["theirsBody"] == ELSEWHERE["body"]
        assert conflict["conflict"]["mineTitle"] == mine["title"]
        assert conflict["conflict"]["mineBody"] == mine["body"]
        # The user's edit stays in the editor.
        assert conflict["view"]["title"] == mine["title"]
        assert conflict["view"]["body"] == mine["body"]
        refused, refreshed = conflict["host"]["viewCalls"][1:]
        assert refused["arguments"] == {"id": note_id, "data": mine, "expected_version": 2}
        assert refused["result"]["isError"] is True
        details = refused["result"]["_meta"][TOOL_ERROR_META_KEY]["error"]
        assert details["code"] == "conflict" and details["current"]["version"] == 3
        # The follow-up call that refreshed the component.
        assert refreshed["name"] == "notes_get" and refreshed["arguments"] == {"id": note_id}
        assert refreshed["result"]["structuredContent"]["object"]["version"] == 3

        # Saved again on the version the refresh brought.
        resaved = driver.step("resaved")
        assert resaved["view"]["version"] == "4" and resaved["view"]["id"] == note_id
        last = resaved["host"]["viewCalls"][-1]
        assert last["arguments"] == {"id": note_id, "data": mine, "expected_version": 3}
        result_object = last["result"]["structuredContent"]["object"]
        stored = call(gateway, other_token, "notes_get", {"id": note_id})["structuredContent"]
        assert stored["object"]["version"] == 4 and stored["object"]["data"] == mine

        # The ids in structured content and in the component's state (its model context) match.
        context = resaved["host"]["modelContexts"][-1]["structuredContent"]
        assert context["open"]["id"] == result_object["id"] == stored["object"]["id"] == note_id
        assert context["open"]["version"] == result_object["version"] == 4
        assert context["unsaved_changes"] is False and context["conflict"] is False

        # The component follows the host's theme; it fetched nothing but through the host.
        assert resaved["dark"]["theme"] == "dark"
        allowed = {_origin(origins.host_page), _origin(origins.sandbox_page), _origin(url)}
        assert {_origin(r) for r in resaved["requests"] if not r.startswith("about:")} <= allowed
        assert resaved["pageErrors"] == []
        driver.go()

    for step in (rendered, saved, conflict, resaved):
        assert Path(step["shot"]).is_file()
    shots = os.environ.get("STOWAGE_COMPONENT_SHOTS")
    if shots:  # e.g. /tmp/components-shots for a note: the normal and the conflict view
        Path(shots).mkdir(parents=True, exist_ok=True)
        for step in (saved, conflict):
            shutil.copy(step["shot"], shots)
    assert time.monotonic() - started < 60


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
