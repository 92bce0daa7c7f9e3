"""``stowage gateway serve``: its flags come from :data:`gateway._settings.SETTINGS`."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from gateway._settings import SETTINGS, GatewaySettings
from stowage.runtime import config

if TYPE_CHECKING:
    from gateway.directory._directory import TenantSource


def register(subparsers: config.Subparsers) -> None:
    commands = config.add_group(subparsers, "gateway", help="run the MCP gateway")
    config.add_command(commands, "serve", _serve, SETTINGS, GatewaySettings)


def _serve(args: argparse.Namespace) -> int:
    """Serve every tenant's MCP endpoint over HTTP.

    Serve every tenant's MCP endpoint over HTTP. With --processes N above 1 this
    process checks the address is free, then supervises N gateway processes that
    share it (one dies: another starts; SIGTERM stops them all), and /metrics on
    any of them sums them all. That needs --redis-url: rate limits and
    revocations are otherwise kept per process.
    """
    settings = GatewaySettings.from_env(os.environ, **config.flags(args, SETTINGS))

    from stowage.runtime import logging as _logging

    _logging.configure(settings.log_level)
    if settings.tenants_from != "kubernetes" and settings.tenants_file is None:
        print(
            "stowage gateway serve: a tenants file is required: "
            "--tenants-file / $STOWAGE_GATEWAY_TENANTS_FILE",
            file=sys.stderr,
        )
        return 2
    supervising = settings.processes > 1 and settings.parent_pid is None
    # Before the app's imports: the API server produces the first list of Tenants (or the
    # file's reader parses the file) meanwhile.
    source = None if supervising else _source(settings)

    import uvicorn

    from gateway._app import create_app
    from gateway._processes import ListenError, serve_child, supervise

    try:
        if supervising:
            return supervise(settings)
        from stowage import tracing

        tracing.configure("stowage-gateway", os.environ)
        app = create_app(settings, source)
        if settings.parent_pid is not None:
            return serve_child(app, settings)
    except ListenError as e:
        print(f"stowage gateway serve: {e}", file=sys.stderr)
        return 1
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False)
    return 0


def _source(settings: GatewaySettings) -> TenantSource | None:
    """The Kubernetes source when asked for, its first list already asked for; else the
    tenants file's, its first read already started."""
    if settings.tenants_from != "kubernetes":
        if settings.tenants_file is None:
            return None
        from gateway.directory._tenant_file import FileTenantSource

        file = FileTenantSource(settings.tenants_file, settings.reload_interval)
        file.read_ahead()
        return file
    from gateway.directory._kube_source import KubeTenantSource

    source = KubeTenantSource(kubeconfig=settings.kubeconfig, namespace=settings.kube_namespace)
    source.list_ahead()
    return source
