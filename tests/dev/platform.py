"""``stowage dev`` as a test runs it: a real process on free ports, stopped and started again."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from stowage_testing.tools import eventually, free_port


@dataclass
class DevPlatform:
    """One ``stowage dev`` on its own data directory; restarts keep the directory and ports."""

    workdir: Path
    port: int = field(default_factory=free_port)
    worker_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def data(self) -> Path:
        return self.workdir / "dev"

    @property
    def log_path(self) -> Path:
        return self.workdir / "dev.log"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def mcp_url(self) -> str:
        return f"{self.base}/t/demo/mcp"

    @property
    def issuer(self) -> str:
        return f"{self.base}/dev-auth"

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "stowage", "dev", "--data-dir", str(self.data),
                 "--port", str(self.port), "--worker-port", str(self.worker_port)],
                stdout=log,
                stderr=log,
            )  # fmt: skip

        def ready() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.log()[-3000:]
            try:
                return httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        eventually(ready, timeout=60, what="stowage dev is ready")

    def stop(self) -> None:
        """SIGTERM, as a terminal's Ctrl-C would; then check that no worker outlives it."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=20)
        eventually(
            lambda: not listening(self.worker_port),
            timeout=15,
            what="the dev worker stops with it",
        )
        assert worker_pids(self.data) == [], "a dev worker outlived stowage dev"

    def restart(self) -> None:
        self.stop()
        self.start()


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (state first), if it exists."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def descendants(root: int) -> dict[int, str]:
    """The live processes below ``root``, each with its start time (a reused pid has another)."""
    stats: dict[int, list[str]] = {}
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            stats[int(entry.name)] = stat
            children.setdefault(int(stat[1]), []).append(int(entry.name))
    found: dict[int, str] = {}
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if stats[child][0] != "Z":
                found[child] = stats[child][19]
            todo.append(child)
    return found


def still_running(processes: dict[int, str]) -> list[int]:
    """Those of ``processes`` (from :func:`descendants`) that have not ended."""
    return [
        pid
        for pid, started in processes.items()
        if (stat := _stat(pid)) is not None and stat[0] != "Z" and stat[19] == started
    ]


def token(platform: DevPlatform, user: str = "alice") -> str:
    """A token from ``stowage token`` for the platform running from ``platform``'s data."""
    done = subprocess.run(
        [sys.executable, "-m", "stowage", "token", "--tenant", "demo", "--user", user,
         "--data-dir", str(platform.data)],
        check=True,
        capture_output=True,
        text=True,
    )  # fmt: skip
    return done.stdout.strip()


def worker_pids(data: Path) -> list[int]:
    """Live (not zombie) ``stowage worker serve`` processes on this data directory."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        command = [a.decode(errors="replace") for a in argv]
        if "serve" in command and any(str(data) in a for a in command) and state != "Z":
            found.append(int(entry.name))
    return found
