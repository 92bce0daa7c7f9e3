"""Finding Node 22, the MCP Inspector CLI and the conformance suite, and running them.

``hack/node-tools.sh`` installs them (pinned by ``hack/node-tools/package.json``
and its lock file) into ``$STOWAGE_TOOLS_DIR/<tag>/node_modules/.bin``, default
``/var/cache/stowage/tools``; the tag is derived from the pins exactly as the
script does. A missing tool fails the test (``stowage_testing.tools.missing``),
never skips it.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stowage_testing.tools import missing

REPO = Path(__file__).resolve().parents[2]
PINS = REPO / "hack" / "node-tools" / "package.json"
HOW = "run `hack/node-tools.sh` (it installs them with npm into the tools cache)"


def pinned_versions() -> dict[str, str]:
    deps: dict[str, str] = json.loads(PINS.read_text())["dependencies"]
    return deps


def tools_bin_dir() -> Path:
    """Where hack/node-tools.sh puts the pinned tools."""
    pins = pinned_versions()
    tag = (
        f"node-{pins['node']}"
        f"-inspector-{pins['@modelcontextprotocol/inspector']}"
        f"-conformance-{pins['@modelcontextprotocol/conformance']}"
    )
    root = Path(os.environ.get("STOWAGE_TOOLS_DIR") or "/var/cache/stowage/tools")
    return root / tag / "node_modules" / ".bin"


@dataclass(frozen=True)
class Ran:
    """One run of a Node tool: exit status and output."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return f"{' '.join(self.args)}\n-> {self.returncode}\n{self.stdout}\n{self.stderr}"


@dataclass(frozen=True)
class NodeTools:
    """The pinned Node and the MCP clients, run with that Node first on ``PATH``."""

    bin_dir: Path
    home: Path

    @classmethod
    def find(cls, home: Path) -> NodeTools:
        bin_dir = tools_bin_dir()
        for name in ("node", "mcp-inspector", "conformance"):
            if not (bin_dir / name).is_file():
                missing(f"{name} ({bin_dir / name})", HOW)
        home.mkdir(parents=True, exist_ok=True)
        return cls(bin_dir, home)

    def run(self, program: str, *args: str, timeout: float = 120, cwd: Path | None = None) -> Ran:
        argv = [str(self.bin_dir / program), *args]
        env = {
            **os.environ,
            # The packages' `#!/usr/bin/env node` must find the pinned Node 22.
            "PATH": f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            # The Inspector keeps a catalog and storage under HOME: keep them out of the user's.
            "HOME": str(self.home),
            "NO_COLOR": "1",
        }
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd, check=False
        )
        return Ran(argv, done.returncode, done.stdout, done.stderr)

    def inspector(self, url: str, token: str, *args: str) -> Ran:
        """``mcp-inspector --cli <url>`` over Streamable HTTP with the bearer token."""
        return self.run(
            "mcp-inspector",
            "--cli",
            url,
            "--transport",
            "http",
            "--header",
            f"Authorization: Bearer {token}",
            *args,
        )

    def node_version(self) -> str:
        return self.run("node", "--version").stdout.strip()
