"""``stowage gateway serve``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any


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
    serve.add_argument(
        "--revocation-sync-interval",
        type=float,
        help="seconds between catch-ups of revocations from workers "
        "(default 30; $STOWAGE_GATEWAY_REVOCATION_SYNC_INTERVAL)",
    )
    serve.add_argument(
        "--introspection-cache-seconds",
        type=float,
        help="longest reuse of an opaque token's introspection answer "
        "(default 60; $STOWAGE_GATEWAY_INTROSPECTION_CACHE_SECONDS)",
    )
    serve.add_argument(
        "--secrets-dir",
        type=Path,
        help="introspection client secrets as DIR/NAME/KEY ($STOWAGE_GATEWAY_SECRETS_DIR)",
    )
    serve.add_argument("--log-level", default="INFO")
    serve.set_defaults(handler=_serve)


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
        revocation_sync_interval=args.revocation_sync_interval,
        introspection_cache_seconds=args.introspection_cache_seconds,
        secrets_dir=args.secrets_dir,
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
