"""``stowage gateway serve``, ``stowage token`` and ``stowage dev``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

DEFAULT_DATA_DIR = Path(".dev")
DEV_KEY_NAME = "dev-issuer.jwk.json"  # the same as gateway._devkeys.DEV_KEY_NAME (kept light)
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    gateway = subparsers.add_parser("gateway", help="run the MCP gateway")
    commands = gateway.add_subparsers(dest="gateway_command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="serve every tenant's MCP endpoint over HTTP")
    serve.add_argument("--tenants-file", type=Path, help="default: $STOWAGE_GATEWAY_TENANTS_FILE")
    serve.add_argument(
        "--tenants-from",
        choices=["file", "kubernetes"],
        default=os.environ.get("STOWAGE_GATEWAY_TENANTS_FROM", "file"),
        help="where tenants come from: the YAML file, or Tenant resources (read-only watch)",
    )
    serve.add_argument("--kube-namespace", help="watch Tenants in this namespace (default: all)")
    serve.add_argument("--kubeconfig", type=Path, help="default: in-cluster configuration")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--public-url", help="base URL clients use (default: http://HOST:PORT)")
    serve.add_argument(
        "--allowed-host", action="append", default=[], help="accepted Host header (repeatable)"
    )
    serve.add_argument(
        "--allowed-origin", action="append", default=[], help="accepted browser origin"
    )
    serve.add_argument("--redis-url", help="share rate limits through Redis (default: in-process)")
    serve.add_argument("--max-body-bytes", type=int)
    serve.add_argument("--call-timeout", type=float, help="worker call deadline, seconds")
    serve.add_argument("--reload-interval", type=float, help="tenant file check period, seconds")
    serve.add_argument("--dev-auth-key", type=Path, help="mount the dev authorization server")
    serve.add_argument("--log-level", default="INFO")
    serve.set_defaults(handler=_serve)

    token = subparsers.add_parser("token", help="print a token signed by the dev key")
    token.add_argument("--tenant", required=True)
    token.add_argument("--user", required=True, help="the token's subject")
    token.add_argument(
        "--scope", action="append", help="repeatable; default: stowage:read stowage:write"
    )
    token.add_argument("--audience", help="default: PUBLIC_URL/t/TENANT/mcp")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    token.add_argument("--public-url", help=f"gateway base URL (default {DEFAULT_PUBLIC_URL})")
    token.add_argument("--issuer", help="default: PUBLIC_URL/dev-auth")
    token.add_argument("--key-file", type=Path, help=f"default: {DEFAULT_DATA_DIR / DEV_KEY_NAME}")
    token.set_defaults(handler=_token)

    dev = subparsers.add_parser(
        "dev", help="run gateway, a demo tenant's worker and a dev OAuth server locally"
    )
    dev.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    dev.add_argument("--port", type=int, default=8000)
    dev.add_argument("--worker-port", type=int, default=50151)
    dev.add_argument("--tenant", default="demo")
    dev.add_argument("--log-level", default="INFO")
    dev.set_defaults(handler=_dev)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway._app import create_app
    from gateway._directory import TenantSource
    from gateway._settings import GatewaySettings
    from stowage import _logging

    _logging.configure(args.log_level)
    settings = GatewaySettings.from_env(
        tenants_file=args.tenants_file,
        public_url=args.public_url
        or os.environ.get("STOWAGE_GATEWAY_PUBLIC_URL")
        or f"http://{args.host}:{args.port}",
        allowed_hosts=tuple(args.allowed_host),
        allowed_origins=tuple(args.allowed_origin),
        redis_url=args.redis_url,
        max_body_bytes=args.max_body_bytes,
        call_timeout=args.call_timeout,
        reload_interval=args.reload_interval,
        dev_auth_key_file=args.dev_auth_key,
        log_level=args.log_level,
    )
    source: TenantSource | None = None
    if args.tenants_from == "kubernetes":
        from gateway._kube_source import KubeTenantSource

        source = KubeTenantSource(kubeconfig=args.kubeconfig, namespace=args.kube_namespace)
    elif settings.tenants_file is None:
        print("stowage gateway serve: --tenants-file is required", file=sys.stderr)
        return 2
    app = create_app(settings, source)
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False)
    return 0


def _token(args: argparse.Namespace) -> int:
    from gateway._devkeys import DEFAULT_SCOPES, load_or_create_key, sign_token

    public = args.public_url or os.environ.get("STOWAGE_GATEWAY_PUBLIC_URL") or DEFAULT_PUBLIC_URL
    public = public.rstrip("/")
    key_file: Path = args.key_file or DEFAULT_DATA_DIR / DEV_KEY_NAME
    if not key_file.exists():
        print(
            f"stowage token: no dev key at {key_file}; run `stowage dev` (or `make dev`) first",
            file=sys.stderr,
        )
        return 1
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


def _dev(args: argparse.Namespace) -> int:
    from gateway._dev import run_dev

    return run_dev(
        data_dir=args.data_dir,
        port=args.port,
        worker_port=args.worker_port,
        tenant=args.tenant,
        log_level=args.log_level,
    )
