"""CPU seconds used by processes (and their children), read from /proc. Linux only.

A benchmark samples before and after a round and divides by the calls made,
so each process's CPU cost per call is measured, not guessed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; everything after its ")" splits cleanly.
    return raw.rsplit(")", 1)[1].split()


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None:
                tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def _tree(roots: Iterable[int]) -> set[int]:
    tree = _children()
    seen: set[int] = set()
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo.extend(tree.get(pid, ()))
    return seen


def cpu_seconds(pids: Iterable[int], *, with_children: bool = True) -> float:
    """User + system CPU seconds of ``pids`` and their descendants so far.

    Live descendants are read one by one; those that already exited count
    through their parent's ``cutime``/``cstime`` once it reaped them (as the
    PostgreSQL postmaster reaps its backends), so a short-lived backend's time
    is not lost.
    """
    roots = set(pids)
    total = 0
    for pid in _tree(roots) if with_children else roots:
        fields = _stat(pid)
        if fields is not None:
            # utime and stime are fields 14 and 15 of /proc/<pid>/stat (1-based) ...
            total += int(fields[11]) + int(fields[12])
            if with_children and pid in roots:
                # ... cutime and cstime, 16 and 17: reaped children's time.
                total += int(fields[13]) + int(fields[14])
    return total / _TICKS


def waiting_seconds() -> float | None:
    """Seconds so far in which some task of this machine was ready to run and waited for a core.

    Linux's pressure stall information (``/proc/pressure/cpu``, its ``some`` line). A
    round's share of it says how much of the round its processes spent queued for the
    machine's cores: time no profile of one process shows as waiting (py-spy counts a
    thread that waits for a core as busy, in whatever call it was preempted). None
    where the kernel keeps none.
    """
    try:
        some = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    for part in some.split():
        if part.startswith("total="):
            return int(part.removeprefix("total=")) / 1e6
    return None


def parent_of(pid: int) -> int:
    fields = _stat(pid)
    if fields is None:
        raise ProcessLookupError(pid)
    return int(fields[1])


class CpuMeter:
    """Samples named groups of processes; ``delta()`` is the CPU seconds since ``start()``."""

    def __init__(self, groups: Mapping[str, Iterable[int]]) -> None:
        self.groups = {name: list(pids) for name, pids in groups.items()}
        self._start: dict[str, float] = {}

    def start(self) -> None:
        self._start = {name: cpu_seconds(pids) for name, pids in self.groups.items()}

    def delta(self) -> dict[str, float]:
        return {
            name: round(cpu_seconds(pids) - self._start.get(name, 0.0), 3)
            for name, pids in self.groups.items()
        }
