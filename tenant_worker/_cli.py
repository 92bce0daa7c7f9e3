"""``stowage worker migrate|serve``: flags from :data:`tenant_worker._settings.SETTINGS`."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from stowage import _logging, config
from tenant_worker._settings import SETTINGS, WorkerSettings

_ENVIRONMENT = (
    "Every option has an environment variable (named in its help); a flag wins over its "
    "variable, and an empty variable counts as unset."
)
#: ``migrate`` needs only the database.
_MIGRATE_SETTINGS = config.named(SETTINGS, "database_url")


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    worker = subparsers.add_parser("worker", help="run or migrate a tenant worker")
    commands = worker.add_subparsers(dest="worker_command", required=True, metavar="COMMAND")

    migrate = commands.add_parser(
        "migrate",
        help="apply the database migrations",
        description=f"Apply the worker's Alembic migrations to the tenant database. {_ENVIRONMENT}",
    )
    config.add_arguments(migrate, _MIGRATE_SETTINGS, WorkerSettings)
    migrate.set_defaults(handler=_migrate)

    serve = commands.add_parser(
        "serve",
        help="serve one tenant over gRPC",
        description=f"Serve one tenant's storage over gRPC. {_ENVIRONMENT}",
    )
    config.add_arguments(serve, SETTINGS, WorkerSettings)
    serve.set_defaults(handler=_serve)


def _migrate(args: argparse.Namespace) -> int:
    from tenant_worker._migrate import migrate

    _logging.configure("INFO")
    given = config.flags(args, _MIGRATE_SETTINGS)
    settings = config.resolve(WorkerSettings, _MIGRATE_SETTINGS, os.environ, given)
    migrate(settings.database_url)
    return 0


def _serve(args: argparse.Namespace) -> int:
    settings = WorkerSettings.from_env(os.environ, **config.flags(args, SETTINGS))

    from tenant_worker._processes import follow_parent, supervise
    from tenant_worker._server import ListenError, serve

    _logging.configure(settings.log_level)
    try:
        if settings.processes > 1 and settings.parent_pid is None:
            return supervise(settings, settings.log_level)
        if settings.parent_pid is not None:
            follow_parent(settings.parent_pid)
        asyncio.run(serve(settings))
    except ListenError as e:
        print(f"stowage worker serve: {e}", file=sys.stderr)
        return 1
    return 0
