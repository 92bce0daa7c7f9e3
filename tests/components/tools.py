"""Finding the components' pinned npm packages, Node 22 and Chromium, and building with them.

``hack/build-components.sh --install`` (run by ``hack/test-deps.sh``) installs each
package set exactly from its lock file into
``$STOWAGE_TOOLS_DIR/<name>-<first 16 hex of the lock file's sha256>``, default
``/var/cache/stowage/tools``; the path is derived here exactly as the script does.
A missing tool fails the test (``stowage_testing.tools.missing``), never skips it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from stowage_testing.tools import find_program, missing
from tests.clients.tools import tools_bin_dir

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "hack" / "build-components.sh"
#: The package sets: the Notes component's build, and the test host's (with playwright-core).
PINS = {
    "notes": REPO / "components" / "notes",
    "host": REPO / "tests" / "components" / "host",
}
#: The Notes component as built and checked in (served by `make dev`'s demo tenant).
NOTES_HTML = REPO / "stowage_dev" / "components" / "notes.html"
HOW = "run `hack/build-components.sh --install` (it installs them with npm into the tools cache)"


def install_dir(target: str) -> Path:
    """Where hack/build-components.sh installs ``target``'s pinned packages."""
    lock = (PINS[target] / "package-lock.json").read_bytes()
    root = Path(os.environ.get("STOWAGE_TOOLS_DIR") or "/var/cache/stowage/tools")
    return root / f"components-{target}-{hashlib.sha256(lock).hexdigest()[:16]}"


@dataclass(frozen=True)
class ComponentTools:
    """The pinned packages of both sets, the pinned Node and Debian's Chromium."""

    node: Path
    chromium: Path

    @classmethod
    def find(cls) -> ComponentTools:
        for target in PINS:
            installed = install_dir(target)
            if not (installed / "node_modules" / "esbuild").is_dir():
                missing(f"the pinned npm packages of {PINS[target]} ({installed})", HOW)
        node = tools_bin_dir() / "node"
        if not node.is_file():
            missing(f"Node 22 ({node})", "run `hack/node-tools.sh`")
        chromium = find_program("chromium")
        if chromium is None:
            missing("chromium", "install it (Debian: sudo apt-get install chromium)")
        assert chromium is not None
        return cls(node, chromium)

    @property
    def host_modules(self) -> Path:
        return install_dir("host") / "node_modules"

    def build(self, out: Path, *targets: str) -> None:
        """``hack/build-components.sh --out OUT TARGETS…`` (from the cached packages)."""
        done = subprocess.run(
            [str(SCRIPT), "--out", str(out), *targets],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"{SCRIPT} failed:\n{done.stdout}\n{done.stderr}"
