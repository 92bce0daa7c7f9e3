"""Where the dev platform keeps its files, and where it serves. No I/O beyond its own record."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_DATA_DIR = Path(".dev")
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
#: The dev signing key inside the data directory.
DEV_KEY_NAME = "dev-issuer.jwk.json"
#: The development authorization server's state: clients, grants, refresh tokens.
AUTH_STATE_NAME = "dev-auth.json"
#: The gateway's file-link master key (``--files-keys-dir``), made once and kept.
FILES_KEYS_DIR_NAME = "files-keys"
#: Where the platform serves, written at its start.
RECORD_NAME = "dev-platform.json"


@dataclass(frozen=True)
class PlatformRecord:
    """Where a ``stowage dev`` serves; written at its start, read by ``stowage token``."""

    public_url: str = DEFAULT_PUBLIC_URL

    @property
    def issuer(self) -> str:
        return f"{self.public_url}/dev-auth"

    def audience(self, tenant: str) -> str:
        return f"{self.public_url}/t/{tenant}/mcp"

    @classmethod
    def read(cls, data_dir: Path) -> PlatformRecord:
        """The record in ``data_dir``; the defaults when no platform ran there yet."""
        path = data_dir / RECORD_NAME
        if not path.exists():
            return cls()
        return cls(public_url=str(json.loads(path.read_text())["public_url"]))

    def write(self, data_dir: Path) -> None:
        tmp = data_dir / f"{RECORD_NAME}.tmp"
        tmp.write_text(json.dumps(asdict(self)))
        tmp.replace(data_dir / RECORD_NAME)
