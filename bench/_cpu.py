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
