"""The samples of several processes, summed for one ``/metrics`` (``PROMETHEUS_MULTIPROC_DIR``).

prometheus-client's ``MultiProcessCollector`` reads every ``*.db`` file of the
directory. A process that has just started creates its file empty and only
then sizes it and writes its header, so a scrape that lands in between read a
file of no bytes and failed with a 500 (seen when the supervisor replaced a
killed worker while Prometheus scraped). :func:`summed_registry` skips such a
file: it holds no samples yet, and the next scrape reads it.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

#: A file's header (the bytes it uses) is its first 4 bytes.
_HEADER = 4


class _StartedProcesses(Collector):
    """``MultiProcessCollector`` over the files whose process has written their header."""

    def __init__(self, path: str) -> None:
        self._path = path

    def collect(self) -> Iterable[object]:  # type: ignore[override]
        files = []
        for name in glob.glob(os.path.join(self._path, "*.db")):
            try:
                if os.path.getsize(name) >= _HEADER:
                    files.append(name)
            except FileNotFoundError:  # a live gauge of a process that just died
                continue
        return MultiProcessCollector.merge(files, accumulate=True)  # type: ignore[no-untyped-call,no-any-return]


def summed_registry(path: str) -> CollectorRegistry:
    """A registry of every process's samples in ``path``, summed as their types say."""
    registry = CollectorRegistry()
    registry.register(_StartedProcesses(path))
    return registry


__all__ = ["summed_registry"]
