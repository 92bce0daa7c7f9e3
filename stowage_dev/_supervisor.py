"""The dev platform's worker process, supervised: started, restarted when it dies, stopped.

``stowage dev`` runs one tenant worker as a child process. When the worker
exits on its own it is started again after a backoff (0.5 s, doubling to at
most 10 s, back to 0.5 s after a minute of running), each restart logged, so a
crash never leaves the platform answering ``unavailable`` forever. ``stop``
ends it (SIGTERM, then SIGKILL after a grace period) and reaps it, so no
process and no zombie is left behind.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

_FIRST_BACKOFF = 0.5
_MAX_BACKOFF = 10.0
_STABLE_AFTER = 60.0


class SupervisedWorker:
    def __init__(self, command: Sequence[str], log_path: Path) -> None:
        self._command = list(command)
        self._log_path = log_path
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._watcher: threading.Thread | None = None
        self.restarts = 0

    @property
    def process(self) -> subprocess.Popen[bytes]:
        assert self._proc is not None, "start() first"
        return self._proc

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self._log_path.open("ab") as out:
            return subprocess.Popen(self._command, stdout=out, stderr=out)

    def start(self) -> subprocess.Popen[bytes]:
        """Start the worker and a thread that restarts it whenever it exits."""
        with self._lock:
            self._proc = self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="dev-worker", daemon=True)
        self._watcher.start()
        return self._proc

    def _watch(self) -> None:
        backoff = _FIRST_BACKOFF
        while not self._stopping.is_set():
            proc = self.process
            started = time.monotonic()
            code = proc.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - started > _STABLE_AFTER:
                backoff = _FIRST_BACKOFF
            log.warning(
                "the dev worker exited with %s; restarting it in %.1fs (log: %s)",
                code,
                backoff,
                self._log_path,
            )
            if self._stopping.wait(backoff):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                self._proc = self._spawn()
                self.restarts += 1
            backoff = min(backoff * 2, _MAX_BACKOFF)

    def stop(self, grace: float = 10.0) -> None:
        """Stop restarting, end the worker and reap it."""
        self._stopping.set()
        with self._lock:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._watcher is not None:
            self._watcher.join(timeout=grace)
