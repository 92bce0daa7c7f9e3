"""``stowage dev`` and ``stowage token``: the dev platform's commands and settings.

Registered in :data:`stowage.cli.COMMANDS`; only the settings and parsing here
(read by :mod:`stowage.runtime.config`), the work is imported when a command runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from stowage.runtime import config
from stowage.runtime.config import Setting
from stowage_dev._layout import DEFAULT_DATA_DIR


@dataclass(frozen=True)
class DevSettings:
    """How ``stowage dev`` runs; :data:`SETTINGS` documents each field."""

    data_dir: Path = DEFAULT_DATA_DIR
    port: int = 8000
    worker_port: int = 50151
    tenant: str = "demo"
    log_level: str = "INFO"


#: Every ``stowage dev`` setting (``stowage token`` reads the data directory too).
SETTINGS: tuple[Setting, ...] = (
    Setting(
        "data_dir",
        "STOWAGE_DEV_DATA_DIR",
        "where the database, the dev key, registered OAuth clients and grants, and the "
        "worker's log are kept across restarts",
        config.path,
        metavar="DIR",
    ),
    Setting("port", "STOWAGE_DEV_PORT", "the gateway's port on 127.0.0.1", config.integer),
    Setting(
        "worker_port",
        "STOWAGE_DEV_WORKER_PORT",
        "the worker's gRPC port on 127.0.0.1",
        config.integer,
    ),
    Setting("tenant", "STOWAGE_DEV_TENANT", "the demo tenant's name"),
    config.log_level("STOWAGE_DEV_LOG_LEVEL"),
)
_TOKEN_SETTINGS = config.named(SETTINGS, "data_dir")


def register(subparsers: config.Subparsers) -> None:
    config.add_command(subparsers, "dev", _dev, SETTINGS, DevSettings)
    _add_token(config.add_command(subparsers, "token", _token, _TOKEN_SETTINGS, DevSettings))


def _add_token(token: argparse.ArgumentParser) -> None:
    """``stowage token``'s arguments besides the data directory: what the token says."""
    token.add_argument(
        "--tenant", required=True, help="the tenant whose MCP URL is the token's audience"
    )
    token.add_argument("--user", required=True, help="the token's subject")
    token.add_argument(
        "--scope",
        action="append",
        help="a scope to grant (repeatable; default: stowage:read stowage:write)",
    )
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default: 3600)")
    token.add_argument(
        "--public-url",
        help="the gateway's base URL (default: the one `stowage dev` serves at, as recorded "
        "in the data directory)",
    )
    token.add_argument("--issuer", help="the token's issuer (default: PUBLIC_URL/dev-auth)")
    token.add_argument("--audience", help="the token's audience (default: PUBLIC_URL/t/TENANT/mcp)")
    token.add_argument(
        "--key-file", type=Path, help="the signing key (default: DATA_DIR/dev-issuer.jwk.json)"
    )


def _dev(args: argparse.Namespace) -> int:
    """Run the gateway, a demo tenant's worker and a dev OAuth server locally.

    Run the whole platform on this machine: a demo tenant's worker on SQLite
    (supervised: restarted when it dies, ended with this command however it ends),
    the gateway, and a development authorization server at /dev-auth that signs in
    anyone by name. Never expose it. Exits with status 1 when another process holds
    the gateway's or the worker's port.
    """
    from stowage_dev._platform import run_dev

    return run_dev(**asdict(config.from_args(DevSettings, SETTINGS, args, os.environ)))


def _token(args: argparse.Namespace) -> int:
    """Print an access token signed by the dev key (for scripts).

    Print an access token for a tenant of `stowage dev`, signed with its dev key.
    Issuer and audience default to those of the platform running from --data-dir,
    so the gateway accepts the token.
    """
    from stowage_dev._keys import DEFAULT_SCOPES, load_or_create_key, sign_token
    from stowage_dev._layout import DEV_KEY_NAME, PlatformRecord

    data_dir = config.from_args(DevSettings, _TOKEN_SETTINGS, args, os.environ).data_dir
    key_file: Path = args.key_file or data_dir / DEV_KEY_NAME
    if not key_file.exists():
        print(
            f"stowage token: no dev key at {key_file}; run `stowage dev` (or `make dev`) first",
            file=sys.stderr,
        )
        return 1
    public = (args.public_url or PlatformRecord.read(data_dir).public_url).rstrip("/")
    scopes = [s for entry in (args.scope or DEFAULT_SCOPES) for s in entry.split()]
    print(
        sign_token(
            load_or_create_key(key_file),
            issuer=args.issuer or f"{public}/dev-auth",
            audience=args.audience or f"{public}/t/{args.tenant}/mcp",
            subject=args.user,
            scopes=scopes,
            ttl=args.ttl,
        )
    )
    return 0
