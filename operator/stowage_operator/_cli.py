"""``stowage operator``: run the kopf operator."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from stowage import _logging


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "operator", help="run the operator (Region and Tenant resources → databases, workers)"
    )
    parser.add_argument(
        "--kubeconfig", type=Path, help="default: $STOWAGE_KUBECONFIG, $KUBECONFIG, in-cluster"
    )
    parser.add_argument(
        "--namespace",
        action="append",
        dest="namespaces",
        help="watch Tenants here (repeatable, globs allowed); default: all namespaces",
    )
    parser.add_argument("--worker-image", help="default: $STOWAGE_WORKER_IMAGE")
    parser.add_argument("--resync-seconds", type=float, help="drift repair interval (default: 60)")
    parser.add_argument("--metrics-port", type=int, help="Prometheus port; 0 disables (9090)")
    parser.add_argument(
        "--health-port", type=int, help="kopf liveness endpoint /healthz; 0 disables (0)"
    )
    parser.add_argument("--log-level", default="INFO")
    parser.set_defaults(handler=_operator)


def _operator(args: argparse.Namespace) -> int:
    from prometheus_client import start_http_server

    from stowage_operator._run import run_operator
    from stowage_operator._settings import OperatorSettings

    _logging.configure(args.log_level)
    settings = OperatorSettings.from_env(
        kubeconfig=args.kubeconfig,
        namespaces=tuple(args.namespaces) if args.namespaces else None,
        worker_image=args.worker_image,
        resync_seconds=args.resync_seconds,
        metrics_port=args.metrics_port,
        health_port=args.health_port,
    )
    if settings.metrics_port:
        start_http_server(settings.metrics_port)
    asyncio.run(run_operator(settings))
    return 0
