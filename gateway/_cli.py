"""``stowage gateway serve``: its flags come from :data:`gateway._settings.SETTINGS`."""

from __future__ import annotations

import argparse
import os
import sys

from gateway._settings import SETTINGS, GatewaySettings
from stowage import config


def register(subparsers: config.Subparsers) -> None:
    commands = config.add_group(subparsers, "gateway", help="run the MCP gateway")
    config.add_command(commands, "serve", _serve, SETTINGS, GatewaySettings)


def _serve(args: argparse.Namespace) -> int:
    """Serve every tenant's MCP endpoint over HTTP."""
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
