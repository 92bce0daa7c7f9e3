"""What tests leave running: threads of this process and processes started from it.

A harness stops what it starts and waits for it to end. :func:`census` lists
the live threads (``threading.enumerate()``) and processes: those descended
from this one (read from ``/proc``), and orphans of its process group (a
grandchild whose parent died is re-parented away from this process but keeps
its group). :func:`started_since` names what a census did not list, and
:func:`still_running` which of those are alive after waiting a bounded time for
the ones on their way out.

No pytest here: ``tests/conftest.py`` decides when to look and reports.
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

#: Threads that may outlive whoever started them, by name prefix, with the reason.
LONG_LIVED_THREADS = {
    "asyncio_": (
        "the default executor's workers of an event loop, started on first use: during a "
        "test, for a loop a wider fixture runs (the operator's). They end when their loop "
        "closes, and a loop left running is caught by its own thread"
    ),
}

#: Processes that may outlive whoever started them, by a part of their command line.
LONG_LIVED_PROCESSES = {
    "multiprocessing.resource_tracker": (
        "the standard library's one tracker per process, started with the first "
        "spawn-context process (the operator's migration pool); it ends with pytest"
    ),
}

#: How often a waiting check looks again, seconds.
POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Process:
    """A process, told apart from a later one that reuses its pid by its start time."""

    pid: int
    #: Start time, clock ticks after boot (``/proc/<pid>/stat`` field 22).
    started: int
    #: As first seen (a process seen between fork and exec still shows its parent's).
    command: str = field(compare=False)

    def alive(self) -> bool:
        stat = _stat(self.pid)
        return stat is not None and stat.started == self.started and stat.running

    def __str__(self) -> str:
        return f"process {self.pid} `{_command(self.pid) if self.alive() else self.command}`"


@dataclass(frozen=True)
class Census:
    """Live threads and processes at one moment (or those started between two)."""

    threads: frozenset[threading.Thread] = frozenset()
    processes: frozenset[Process] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.threads or self.processes)

    def __sub__(self, other: Census) -> Census:
        return Census(self.threads - other.threads, self.processes - other.processes)

    def __or__(self, other: Census) -> Census:
        return Census(self.threads | other.threads, self.processes | other.processes)

    def alive(self) -> Census:
        return Census(
            frozenset(t for t in self.threads if t.is_alive()),
            frozenset(p for p in self.processes if p.alive()),
        )

    def only_threads(self) -> Census:
        return Census(threads=self.threads)

    def only_processes(self) -> Census:
        return Census(processes=self.processes)

    def describe(self, origins: Mapping[object, str] | None = None) -> list[str]:
        """One line per thread and process, with who started it when ``origins`` says."""
        known = origins or {}
        lines = [(_thread_text(t), known.get(t)) for t in self.threads]
        lines += [(str(p), known.get(p)) for p in self.processes]
        return sorted(f"{text}, started by {origin}" if origin else text for text, origin in lines)


def census() -> Census:
    """The threads and processes alive now."""
    threads = frozenset(t for t in threading.enumerate() if t.is_alive())
    return Census(threads, frozenset(_our_processes()))


def started_since(before: Census) -> Census:
    """What is alive now that ``before`` did not list, but for the long-lived kinds above."""
    new = census() - before
    return Census(
        frozenset(t for t in new.threads if not t.name.startswith(tuple(LONG_LIVED_THREADS))),
        frozenset(
            p for p in new.processes if not any(part in p.command for part in LONG_LIVED_PROCESSES)
        ),
    )


def still_running(things: Census, timeout: float) -> Census:
    """Which of ``things`` are alive, after waiting up to ``timeout`` seconds for them to end."""
    deadline = time.monotonic() + timeout
    left = things.alive()
    while left and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        left = left.alive()
    return left


def _thread_text(thread: threading.Thread) -> str:
    return f"thread {thread.name!r}" + (" (daemon)" if thread.daemon else "")


# -- /proc ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Stat:
    pid: int
    ppid: int
    group: int
    started: int
    #: Not a zombie: a process that has exited but not been waited for runs nothing.
    running: bool


def _stat(pid: int) -> _Stat | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:  # plain open: a census reads them all
            raw = f.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold anything, ")" too.
    fields = raw.rsplit(b")", 1)[1].split()
    state, ppid, group, started = fields[0], int(fields[1]), int(fields[2]), int(fields[19])
    return _Stat(pid, ppid, group, started, running=state not in (b"Z", b"X"))


def _command(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    command = raw.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
    return command if len(command) <= 200 else command[:197] + "..."


def descendants(pid: int) -> list[Process]:
    """The live processes ``pid`` started, and those they started, and so on."""
    stats = _all_stats()
    return [_process(s) for s in _descendants(pid, stats).values() if s.running]


def _all_stats() -> list[_Stat]:
    return [s for name in os.listdir("/proc") if name.isdigit() and (s := _stat(int(name)))]


def _descendants(pid: int, stats: list[_Stat]) -> dict[int, _Stat]:
    children: defaultdict[int, list[_Stat]] = defaultdict(list)
    for s in stats:
        children[s.ppid].append(s)
    found: dict[int, _Stat] = {}
    todo = [pid]
    while todo:
        for child in children[todo.pop()]:
            found[child.pid] = child
            todo.append(child.pid)
    return found


def _process(stat: _Stat) -> Process:
    return Process(stat.pid, stat.started, _command(stat.pid))


def _our_processes() -> list[Process]:
    """Live descendants of this process, and the orphans of its process group."""
    me, group = os.getpid(), os.getpgrp()
    stats = _all_stats()
    by_pid = {s.pid: s for s in stats}
    ours = _descendants(me, stats)
    for s in stats:
        parent = by_pid.get(s.ppid)
        if s.group == group and s.pid != me and (parent is None or parent.group != group):
            ours.setdefault(s.pid, s)
    return [_process(s) for s in ours.values() if s.running]
