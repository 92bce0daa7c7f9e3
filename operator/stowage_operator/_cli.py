"""``stowage operator``: run the kopf operator; its flags come from :data:`_settings.SETTINGS`."""

from __future__ import annotations

import argparse
import asyncio
import os

from stowage import tracing
from stowage.runtime import config
from stowage.runtime import logging as _logging
from stowage_operator._settings import SETTINGS, OperatorSettings


def register(subparsers: config.Subparsers) -> None:
    config.add_command(subparsers, "operator", _operator, SETTINGS, OperatorSettings)


def _operator(args: argparse.Namespace) -> int:
    """Run the operator (Region and Tenant resources → databases, workers).

    Run the operator: Region and Tenant resources become databases, roles,
    workers and backups.
    """
    settings = OperatorSettings.from_env(os.environ, **config.flags(args, SETTINGS))

    from prometheus_client import start_http_server

    from stowage_operator._run import run_operator

    _logging.configure(settings.log_level)
    tracing.configure("stowage-operator", os.environ)
    if settings.metrics_port:
        start_http_server(settings.metrics_port)
    asyncio.run(run_operator(settings))
    return 0
