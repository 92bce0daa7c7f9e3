"""``stowage operator``: run the kopf operator; its flags come from :data:`_settings.SETTINGS`."""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

from stowage import _logging, config
from stowage_operator._settings import SETTINGS, OperatorSettings


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "operator",
        help="run the operator (Region and Tenant resources → databases, workers)",
        description="Run the operator: Region and Tenant resources become databases, roles, "
        "workers and backups. Every option has an environment variable (named in its help); "
        "a flag wins over its variable, and an empty variable counts as unset.",
    )
    config.add_arguments(parser, SETTINGS, OperatorSettings)
    parser.set_defaults(handler=_operator)


def _operator(args: argparse.Namespace) -> int:
    settings = OperatorSettings.from_env(os.environ, **config.flags(args, SETTINGS))

    from prometheus_client import start_http_server

    from stowage_operator._run import run_operator

    _logging.configure(settings.log_level)
    if settings.metrics_port:
        start_http_server(settings.metrics_port)
    asyncio.run(run_operator(settings))
    return 0
