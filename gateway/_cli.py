"""``stowage gateway serve``: its flags come from :data:`gateway._settings.SETTINGS`."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from gateway._settings import SETTINGS, GatewaySettings
from stowage import config


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    gateway = subparsers.add_parser("gateway", help="run the MCP gateway")
    commands = gateway.add_subparsers(dest="gateway_command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="serve every tenant's MCP endpoint over HTTP",
        description="Serve every tenant's MCP endpoint over HTTP. Every option has an "
        "environment variable (named in its help); a flag wins over its variable, and an "
        "empty variable counts as unset.",
    )
    config.add_arguments(serve, SETTINGS, GatewaySettings)
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    settings = GatewaySettings.from_env(os.environ, **config.flags(args, SETTINGS))

    import uvicorn

    from gateway._app import create_app
    from gateway._directory import TenantSource
    from stowage import _logging

    _logging.configure(settings.log_level)
    source: TenantSource | None = None
    if settings.tenants_from == "kubernetes":
        from gateway._kube_source import KubeTenantSource

        source = KubeTenantSource(kubeconfig=settings.kubeconfig, namespace=settings.kube_namespace)
    elif settings.tenants_file is None:
        print(
            "stowage gateway serve: a tenants file is required: "
            "--tenants-file / $STOWAGE_GATEWAY_TENANTS_FILE",
            file=sys.stderr,
        )
        return 2
    app = create_app(settings, source)
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False)
    return 0
