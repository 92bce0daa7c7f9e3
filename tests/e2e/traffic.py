"""Bounded MCP traffic while something changes: what was acknowledged, what failed, and when.

:func:`traffic_during` runs a loop of ``items_save`` calls (each a new object,
paced, at most ``max_calls``) through a real MCP client while ``change`` runs in
a thread; the loop ends once the change is done and calls have succeeded again
for a while, or at the bound. Each call is a session of its own (initialize,
call), as a connector that reconnects makes them; a failed one (a transport
error, a JSON-RPC error or a tool error) is counted, not retried. The outcome
says which writes were acknowledged (so the test can read every one back) and
how long calls failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread

from stowage_testing.gateway import mcp_client

#: Successful calls after the change that end the loop early.
SETTLED_CALLS = 30
#: Between two calls: spreads the bounded calls over the change.
PACE_SECONDS = 0.1


@dataclass
class Outcome:
    """What the clients saw while the change ran."""

    what: str
    acknowledged: list[str] = field(default_factory=list)
    #: When each call started (monotonic seconds), acknowledged or not.
    started: list[float] = field(default_factory=list)
    failures: list[tuple[float, str]] = field(default_factory=list)
    calls: int = 0
    change_started: float = 0.0
    change_done: float = 0.0
    #: Seconds from the first failure to the next success (0 with no failure).
    recovery_seconds: float = 0.0
    #: Acknowledged writes not found afterwards (set by the test that reads them back).
    lost: int | None = None

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def refused_at_the_door(self) -> list[str]:
        """Failures before the gateway answered (no connection, no HTTP response)."""
        return [f for _, f in self.failures if "ConnectError" in f or "RemoteProtocolError" in f]

    @property
    def during(self) -> int:
        """Calls started while the change ran."""
        return sum(1 for t in self.started if self.change_started <= t <= self.change_done)


def traffic_during(
    url: str, token: str, prefix: str, what: str, change: Callable[[], None], max_calls: int = 300
) -> Outcome:
    """Run ``change`` (blocking) while a client saves ``prefix-N`` objects; the outcome."""
    outcome = Outcome(what)
    state: dict[str, Any] = {"done": False, "after": 0}
    flowing = anyio.Event()

    async def changer() -> None:
        # A few calls first, so the change lands on traffic that flows.
        await flowing.wait()
        outcome.change_started = time.monotonic()
        await anyio.to_thread.run_sync(change)
        outcome.change_done = time.monotonic()
        state["done"] = True

    async def caller() -> None:
        first_failure: float | None = None
        while outcome.calls < max_calls:
            if state["done"] and state["after"] >= SETTLED_CALLS:
                break
            object_id = f"{prefix}-{outcome.calls}"
            outcome.calls += 1
            outcome.started.append(time.monotonic())
            try:
                with anyio.fail_after(20):
                    async with mcp_client(url, token) as client:
                        result = await client.call_tool(
                            "items_save", {"id": object_id, "data": {"n": outcome.calls}}
                        )
                if result.is_error:
                    raise RuntimeError(str(result.content)[:200])
            except Exception as error:  # every failure is counted and shown
                outcome.failures.append((time.monotonic(), _describe(error)))
                if first_failure is None:
                    first_failure = time.monotonic()
            else:
                outcome.acknowledged.append(object_id)
                if len(outcome.acknowledged) >= 10:
                    flowing.set()
                if first_failure is not None and not outcome.recovery_seconds:
                    outcome.recovery_seconds = time.monotonic() - first_failure
                if state["done"]:
                    state["after"] += 1
            await anyio.sleep(PACE_SECONDS)
        flowing.set()

    async def main() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(changer)
            group.start_soon(caller)

    anyio.run(main)
    return outcome


def _describe(error: BaseException) -> str:
    """The error, or the errors a task group gathered, each as ``Type: message``."""
    if isinstance(error, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in error.exceptions)
    cause = f" (from {_describe(error.__cause__)})" if error.__cause__ else ""
    return f"{type(error).__name__}: {str(error)[:300]}{cause}"


def table(outcomes: list[Outcome]) -> str:
    """The outcomes as a Markdown table, for the note."""
    lines = [
        "| change | calls | during the change | acknowledged | failed | lost "
        "| change took (s) | failing for (s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for o in outcomes:
        lost = "?" if o.lost is None else o.lost
        lines.append(
            f"| {o.what} | {o.calls} | {o.during} | {len(o.acknowledged)} | {o.failed} | {lost} "
            f"| {o.change_done - o.change_started:.1f} | {o.recovery_seconds:.1f} |"
        )
    return "\n".join(lines)
