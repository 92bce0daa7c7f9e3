"""The dev platform's worker process, supervised: started, restarted when it dies, stopped.

``stowage dev`` runs one tenant worker as a child process. When the worker
exits on its own it is started again after a backoff (0.5 s, doubling to at
most 10 s, back to 0.5 s after a minute of running), each restart logged, so a
crash never leaves the platform answering ``unavailable`` forever. ``stop``
ends it (SIGTERM, then SIGKILL after a grace period) and reaps it, so no
process and no zombie is left behind.

The worker ends with the platform however the platform ends, SIGKILL included
(:mod:`stowage.runtime.lifeline`): a worker left behind would go on holding the port
and answering for the tenant. Its port is checked free before each start; a
port another process took is not waited for in a restart loop: the supervisor
gives up and says so (``on_give_up``), and the platform stops.

The kernel signals the worker when the *thread* that started it ends: the
first start is the caller's, each restart the watching thread's, and both
live as long as the worker should.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from stowage.runtime.lifeline import child_environ
from stowage.runtime.supervisor import ListenError, claim_free_port

log = logging.getLogger(__name__)

_FIRST_BACKOFF = 0.5
_MAX_BACKOFF = 10.0
_STABLE_AFTER = 60.0


def claim_port(what: str, port: int) -> None:
    """Raise ListenError, naming ``what`` and its port, when another process holds it."""
    try:
        claim_free_port("127.0.0.1", port)
    except ListenError as e:
        raise ListenError(
            f"the {what}'s port {port} is taken by another process (a `stowage dev` still "
            f"running, or a worker one left behind?): {e}"
        ) from e


class SupervisedWorker:
    """The worker serving on 127.0.0.1:``port``; ``on_give_up`` when it cannot be restarted."""

    def __init__(
        self,
        command: Sequence[str],
        log_path: Path,
        port: int,
        on_give_up: Callable[[], None] = lambda: None,
    ) -> None:
        self._command = list(command)
        self._log_path = log_path
        self._port = port
        self._on_give_up = on_give_up
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._watcher: threading.Thread | None = None
        self.restarts = 0
        #: Why the supervisor gave up (and stopped restarting the worker); None while it has not.
        self.failure: str | None = None

    @property
    def process(self) -> subprocess.Popen[bytes]:
        assert self._proc is not None, "start() first"
        return self._proc

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self._log_path.open("ab") as out:
            return subprocess.Popen(
                self._command, stdout=out, stderr=out, env=child_environ(os.environ)
            )

    def start(self) -> subprocess.Popen[bytes]:
        """Start the worker and a thread that restarts it whenever it exits.

        Raises ListenError when another process holds the worker's port.
        """
        claim_port("worker", self._port)
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
            if self._stopping.wait(backoff) or not self._restart():
                return
            backoff = min(backoff * 2, _MAX_BACKOFF)

    def _restart(self) -> bool:
        """Start the worker again; False when stopping, or given up on a taken port."""
        try:
            claim_port("worker", self._port)
        except ListenError as e:
            self.failure = str(e)
            log.error("the dev worker cannot be restarted; stopping: %s", e)
            self._on_give_up()
            return False
        with self._lock:
            if self._stopping.is_set():
                return False
            self._proc = self._spawn()
            self.restarts += 1
        return True

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
