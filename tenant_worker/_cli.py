"""``stowage worker migrate|serve``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from stowage import _logging


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    worker = subparsers.add_parser("worker", help="run or migrate a tenant worker")
    commands = worker.add_subparsers(dest="worker_command", required=True, metavar="COMMAND")

    migrate = commands.add_parser("migrate", help="apply the database migrations")
    migrate.add_argument("--database-url", help="default: $STOWAGE_DATABASE_URL")
    migrate.set_defaults(handler=_migrate)

    serve = commands.add_parser("serve", help="serve one tenant over gRPC")
    serve.add_argument("--database-url", help="default: $STOWAGE_DATABASE_URL")
    serve.add_argument("--tenant", help="tenant name (default: $STOWAGE_TENANT)")
    serve.add_argument(
        "--listen", help="host:port (default: $STOWAGE_WORKER_LISTEN or 127.0.0.1:50051)"
    )
    serve.add_argument("--metrics-port", type=int, help="Prometheus port; 0 disables")
    serve.add_argument("--policy-file", type=Path, help="quotas, retention, collections (YAML)")
    serve.add_argument("--purge-interval", type=float, help="seconds between purges")
    serve.add_argument(
        "--processes",
        type=int,
        help="worker processes sharing the port, supervised by this one "
        "(default: $STOWAGE_WORKER_PROCESSES or 1)",
    )
    serve.add_argument("--log-level", default="INFO")
    serve.set_defaults(handler=_serve)


def _migrate(args: argparse.Namespace) -> int:
    from tenant_worker._migrate import migrate
    from tenant_worker._settings import WorkerSettings

    _logging.configure("INFO")
    settings = WorkerSettings.from_env(database_url=args.database_url)
    migrate(settings.database_url)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from tenant_worker._processes import follow_parent, supervise
    from tenant_worker._server import ListenError, serve
    from tenant_worker._settings import WorkerSettings

    _logging.configure(args.log_level)
    settings = WorkerSettings.from_env(
        database_url=args.database_url,
        tenant=args.tenant,
        listen=args.listen,
        metrics_port=args.metrics_port,
        policy_file=args.policy_file,
        purge_interval=args.purge_interval,
        processes=args.processes,
    )
    try:
        if settings.processes > 1 and settings.parent_pid is None:
            return supervise(settings, args.log_level)
        if settings.parent_pid is not None:
            follow_parent(settings.parent_pid)
        asyncio.run(serve(settings))
    except ListenError as e:
        print(f"stowage worker serve: {e}", file=sys.stderr)
        return 1
    return 0
