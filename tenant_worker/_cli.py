"""``stowage worker migrate|serve``: flags from :data:`tenant_worker._settings.SETTINGS`."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from stowage.runtime import config
from stowage.runtime import logging as _logging
from tenant_worker._settings import SETTINGS, WorkerSettings

#: ``migrate`` needs only the database.
_MIGRATE_SETTINGS = config.named(SETTINGS, "database_url")


def register(subparsers: config.Subparsers) -> None:
    commands = config.add_group(subparsers, "worker", help="run or migrate a tenant worker")
    config.add_command(commands, "migrate", _migrate, _MIGRATE_SETTINGS, WorkerSettings)
    config.add_command(commands, "serve", _serve, SETTINGS, WorkerSettings)


def _migrate(args: argparse.Namespace) -> int:
    """Apply the database migrations.

    Apply the worker's Alembic migrations to the tenant database.
    """
    from tenant_worker._migrate import migrate

    _logging.configure("INFO")
    settings = config.from_args(WorkerSettings, _MIGRATE_SETTINGS, args, os.environ)
    migrate(settings.database_url)
    return 0


def _serve(args: argparse.Namespace) -> int:
    """Serve one tenant over gRPC.

    Serve one tenant's storage over gRPC.
    """
    settings = WorkerSettings.from_env(os.environ, **config.flags(args, SETTINGS))

    from stowage import tracing
    from stowage.runtime.supervisor import ListenError, follow_parent
    from tenant_worker._processes import supervise
    from tenant_worker._server import serve

    _logging.configure(settings.log_level)
    try:
        if settings.processes > 1 and settings.parent_pid is None:
            return supervise(settings, settings.log_level)
        if settings.parent_pid is not None:
            follow_parent(settings.parent_pid)
        tracing.configure("stowage-worker", os.environ)
        asyncio.run(serve(settings))
    except ListenError as e:
        print(f"stowage worker serve: {e}", file=sys.stderr)
        return 1
    return 0
