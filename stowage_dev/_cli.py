"""``stowage dev`` and ``stowage token``: the dev platform's commands.

Registered in :data:`stowage.cli.COMMANDS`; only parsing here, the work is
imported when a command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from stowage_dev._layout import DEFAULT_DATA_DIR


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    dev = subparsers.add_parser(
        "dev",
        help="run the gateway, a demo tenant's worker and a dev OAuth server locally",
        description="Run the whole platform on this machine: a demo tenant's worker on "
        "SQLite (supervised: restarted when it dies), the gateway, and a development "
        "authorization server at /dev-auth that signs in anyone by name. Never expose it.",
    )
    dev.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="where the database, the dev key, registered OAuth clients and grants, and the "
        "worker's log are kept across restarts (default: %(default)s)",
    )
    dev.add_argument(
        "--port", type=int, default=8000, help="the gateway's port on 127.0.0.1 (default: 8000)"
    )
    dev.add_argument(
        "--worker-port",
        type=int,
        default=50151,
        help="the worker's gRPC port on 127.0.0.1 (default: 50151)",
    )
    dev.add_argument("--tenant", default="demo", help="the demo tenant's name (default: demo)")
    dev.add_argument("--log-level", default="INFO", help="log level (default: INFO)")
    dev.set_defaults(handler=_dev)

    token = subparsers.add_parser(
        "token",
        help="print an access token signed by the dev key (for scripts)",
        description="Print an access token for a tenant of `stowage dev`, signed with its "
        "dev key. Issuer and audience default to those of the platform running from "
        "--data-dir, so the gateway accepts the token.",
    )
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
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="the data directory of `stowage dev`: its key and its URLs (default: %(default)s)",
    )
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
    token.set_defaults(handler=_token)


def _dev(args: argparse.Namespace) -> int:
    from stowage_dev._platform import run_dev

    return run_dev(
        data_dir=args.data_dir,
        port=args.port,
        worker_port=args.worker_port,
        tenant=args.tenant,
        log_level=args.log_level,
    )


def _token(args: argparse.Namespace) -> int:
    from stowage_dev._keys import DEFAULT_SCOPES, load_or_create_key, sign_token
    from stowage_dev._layout import DEV_KEY_NAME, PlatformRecord

    key_file: Path = args.key_file or args.data_dir / DEV_KEY_NAME
    if not key_file.exists():
        print(
            f"stowage token: no dev key at {key_file}; run `stowage dev` (or `make dev`) first",
            file=sys.stderr,
        )
        return 1
    public = (args.public_url or PlatformRecord.read(args.data_dir).public_url).rstrip("/")
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
