"""The operator's settings: one typed object, built from the environment at the entry point."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

DEFAULT_WORKER_IMAGE = "ghcr.io/stowage/stowage:0.1.0"


def _gateway_selector() -> dict[str, str]:
    return {"app.kubernetes.io/name": "stowage-gateway"}


def parse_selector(text: str) -> dict[str, str]:
    """Labels from ``k=v,k=v`` (a Kubernetes equality selector); empty text gives none."""
    labels: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"not a label selector (k=v,k=v): {text!r}")
        labels[key.strip()] = value.strip()
    return labels


@dataclass(frozen=True)
class OperatorSettings:
    """What the operator needs to know; every field has an environment variable.

    - ``kubeconfig`` (``STOWAGE_KUBECONFIG``, then ``KUBECONFIG``): the cluster to
      talk to; unset means the in-cluster service account.
    - ``namespaces`` (``STOWAGE_OPERATOR_NAMESPACES``, comma-separated): where to
      watch Tenants; empty means every namespace.
    - ``worker_image`` (``STOWAGE_WORKER_IMAGE``): the image of tenant workers.
    - ``resync_seconds`` (``STOWAGE_OPERATOR_RESYNC_SECONDS``): how often every
      Tenant is reconciled again to repair drift.
    - ``metrics_port`` (``STOWAGE_OPERATOR_METRICS_PORT``): Prometheus port; 0 disables.
    - ``gateway_selector`` (``STOWAGE_OPERATOR_GATEWAY_SELECTOR``, ``k=v,k=v``):
      labels of the gateway pods, the only ones the workers' NetworkPolicy admits.
    - ``health_port`` (``STOWAGE_OPERATOR_HEALTH_PORT``): kopf's liveness endpoint,
      ``/healthz`` on this port; 0 (the default) disables it.
    - ``run_migrations`` (``STOWAGE_OPERATOR_RUN_MIGRATIONS``): apply the worker's
      migrations to each tenant database after creating it.
    - ``max_admin_connections`` (``STOWAGE_OPERATOR_MAX_ADMIN_CONNECTIONS``): admin
      connections the operator opens to one region's PostgreSQL at once (default 8,
      well under PostgreSQL's default ``max_connections`` of 100).
    - ``migration_processes`` (``STOWAGE_OPERATOR_MIGRATION_PROCESSES``): processes
      that apply tenant migrations side by side (default 2; Alembic runs one
      migration at a time per process).
    """

    kubeconfig: Path | None = None
    namespaces: tuple[str, ...] = ()
    worker_image: str = DEFAULT_WORKER_IMAGE
    resync_seconds: float = 60.0
    metrics_port: int = 9090
    gateway_selector: Mapping[str, str] = field(default_factory=_gateway_selector)
    run_migrations: bool = True
    postgres_timeout: float = 10.0
    health_port: int = 0
    max_admin_connections: int = 8
    migration_processes: int = 2

    @property
    def liveness_endpoint(self) -> str | None:
        """kopf's liveness endpoint URL, or None when the health port is 0."""
        return f"http://0.0.0.0:{self.health_port}/healthz" if self.health_port else None

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> OperatorSettings:
        env = os.environ if environ is None else environ
        kubeconfig = env.get("STOWAGE_KUBECONFIG") or env.get("KUBECONFIG")
        namespaces = tuple(
            n.strip() for n in env.get("STOWAGE_OPERATOR_NAMESPACES", "").split(",") if n.strip()
        )
        settings = cls(
            kubeconfig=Path(kubeconfig) if kubeconfig else None,
            namespaces=namespaces,
            worker_image=env.get("STOWAGE_WORKER_IMAGE", DEFAULT_WORKER_IMAGE),
            resync_seconds=float(env.get("STOWAGE_OPERATOR_RESYNC_SECONDS", "60")),
            metrics_port=int(env.get("STOWAGE_OPERATOR_METRICS_PORT", "9090")),
            run_migrations=env.get("STOWAGE_OPERATOR_RUN_MIGRATIONS", "true").lower()
            not in {"0", "false", "no"},
            health_port=int(env.get("STOWAGE_OPERATOR_HEALTH_PORT", "0")),
            max_admin_connections=int(env.get("STOWAGE_OPERATOR_MAX_ADMIN_CONNECTIONS", "8")),
            migration_processes=int(env.get("STOWAGE_OPERATOR_MIGRATION_PROCESSES", "2")),
        )
        if selector := parse_selector(env.get("STOWAGE_OPERATOR_GATEWAY_SELECTOR", "")):
            settings = replace(settings, gateway_selector=selector)
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(settings, **given)
