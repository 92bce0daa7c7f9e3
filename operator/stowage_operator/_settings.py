"""The operator's settings: one typed object, built at the entry point. No I/O here.

Every field is declared in :data:`SETTINGS` with its flag and variable and read by
:mod:`stowage.runtime.config` (a flag beats its variable beats the default below; an
empty variable counts as unset).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stowage import tracing
from stowage.runtime import config
from stowage.runtime.config import Setting

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


def _selector(text: str) -> dict[str, str]:
    """At least one label: an empty selector would admit every pod to the workers."""
    labels = parse_selector(text)
    if not labels:
        raise ValueError(f"not a label selector (k=v,k=v): {text!r}")
    return labels


_selector.__name__ = "selector"

#: What a NetworkPolicyPeer may hold (networking.k8s.io/v1).
_PEER_KEYS = frozenset({"podSelector", "namespaceSelector", "ipBlock"})


@dataclass(frozen=True)
class Peers:
    """NetworkPolicyPeers, kept as the JSON list their variable holds (``str`` gives it back)."""

    text: str = "[]"

    def peers(self) -> list[dict[str, Any]]:
        """The peers, a fresh copy each time (they go into manifests)."""
        loaded: list[dict[str, Any]] = json.loads(self.text)
        return loaded

    def __str__(self) -> str:
        return "" if self.text == "[]" else self.text


def network_peers(text: str) -> Peers:
    """A JSON list of NetworkPolicyPeers: ``[{"namespaceSelector": {…}, "podSelector": {…}}]``."""
    try:
        loaded = json.loads(text)
    except ValueError:
        raise ValueError(f"not a JSON list of NetworkPolicyPeers: {text!r}") from None
    if not isinstance(loaded, list):
        raise ValueError(f"not a JSON list of NetworkPolicyPeers: {text!r}")
    for peer in loaded:
        if not isinstance(peer, dict) or not peer or not set(peer) <= _PEER_KEYS:
            raise ValueError(
                f"a NetworkPolicyPeer holds podSelector, namespaceSelector or ipBlock: {peer!r}"
            )
        if not all(isinstance(v, dict) for v in peer.values()):
            raise ValueError(f"a NetworkPolicyPeer's selectors are objects: {peer!r}")
    return Peers(json.dumps(loaded, sort_keys=True, separators=(",", ":")))


#: The tracing fields and their variables, :data:`stowage.tracing.PASSED_ON` in order.
_TRACING = dict(
    zip(
        (
            "otel_sdk_disabled",
            "otel_traces_exporter",
            "otel_traces_endpoint",
            "otel_endpoint",
            "otel_sampler",
            "otel_sampler_arg",
            "otel_resource_attributes",
        ),
        tracing.PASSED_ON,
        strict=True,
    )
)


@dataclass(frozen=True)
class OperatorSettings:
    """What the operator needs to know; :data:`SETTINGS` documents each field."""

    kubeconfig: Path | None = None
    namespaces: tuple[str, ...] = ()
    worker_image: str = DEFAULT_WORKER_IMAGE
    resync_seconds: float = 60.0
    metrics_port: int = 9090
    gateway_selector: Mapping[str, str] = field(default_factory=_gateway_selector)
    gateway_namespace: str = ""
    metrics_from: Peers = Peers()
    run_migrations: bool = True
    postgres_timeout: float = 10.0
    health_port: int = 0
    max_admin_connections: int = 8
    spare_databases: int = 0
    migration_processes: int = 2
    log_level: str = "INFO"
    # Tracing: the standard OTEL_* variables the operator was given (its own traces
    # read them too), passed on to the workers and backup Jobs (:attr:`tracing`).
    otel_sdk_disabled: str = ""
    otel_traces_exporter: str = ""
    otel_traces_endpoint: str = ""
    otel_endpoint: str = ""
    otel_sampler: str = ""
    otel_sampler_arg: str = ""
    otel_resource_attributes: str = ""

    @property
    def tracing(self) -> dict[str, str]:
        """The tracing variables a worker or backup Job gets: those set, by name."""
        values = {variable: str(getattr(self, name)) for name, variable in _TRACING.items()}
        return {variable: value for variable, value in values.items() if value.strip()}

    @property
    def liveness_endpoint(self) -> str | None:
        """kopf's liveness endpoint URL, or None when the health port is 0."""
        return f"http://0.0.0.0:{self.health_port}/healthz" if self.health_port else None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **flags: Any) -> OperatorSettings:
        """Settings from ``flags`` (by field; None is not given) over the variables.

        Raises :class:`stowage.runtime.config.ConfigError` naming a variable that does not read.
        """
        return config.resolve(cls, SETTINGS, os.environ if environ is None else environ, flags)


#: Every operator setting: its field, variable, cast and help (the order of ``--help``).
SETTINGS: tuple[Setting, ...] = (
    config.kubeconfig("the cluster's kubeconfig", shown_default="in-cluster service account"),
    Setting(
        "namespaces",
        "STOWAGE_OPERATOR_NAMESPACES",
        "watch Tenants in this namespace, globs allowed (repeatable; the variable is "
        "comma-separated)",
        flag="--namespace",
        many=True,
        metavar="NAMESPACE",
        shown_default="all namespaces",
    ),
    Setting("worker_image", "STOWAGE_WORKER_IMAGE", "the image of tenant workers and backups"),
    Setting(
        "resync_seconds",
        "STOWAGE_OPERATOR_RESYNC_SECONDS",
        "how often every Tenant is reconciled again to repair drift, seconds",
        config.number,
    ),
    config.metrics_port("STOWAGE_OPERATOR_METRICS_PORT"),
    Setting(
        "health_port",
        "STOWAGE_OPERATOR_HEALTH_PORT",
        "kopf's liveness endpoint /healthz on this port; 0 disables it",
        config.at_least(0),
    ),
    Setting(
        "gateway_selector",
        "STOWAGE_OPERATOR_GATEWAY_SELECTOR",
        "labels of the gateway pods, the only pods the workers' NetworkPolicy admits",
        _selector,
        metavar="K=V,K=V",
    ),
    Setting(
        "gateway_namespace",
        "STOWAGE_OPERATOR_GATEWAY_NAMESPACE",
        "namespace of the gateway pods: the workers admit gRPC from gateway pods there only",
        shown_default="any namespace; the chart sets its own",
    ),
    Setting(
        "metrics_from",
        "STOWAGE_OPERATOR_METRICS_FROM",
        "who may scrape the workers' metrics port: a JSON list of NetworkPolicyPeers",
        network_peers,
        metavar="JSON",
        shown_default="nobody",
    ),
    Setting(
        "run_migrations",
        "STOWAGE_OPERATOR_RUN_MIGRATIONS",
        "apply the worker's migrations to each tenant database after creating it",
        config.boolean,
    ),
    Setting(
        "postgres_timeout",
        "STOWAGE_OPERATOR_POSTGRES_TIMEOUT",
        "seconds to wait for a connection to a region's PostgreSQL",
        config.number,
    ),
    Setting(
        "max_admin_connections",
        "STOWAGE_OPERATOR_MAX_ADMIN_CONNECTIONS",
        "admin connections open at once to one region's PostgreSQL",
        config.at_least(1),
    ),
    Setting(
        "spare_databases",
        "STOWAGE_OPERATOR_SPARE_DATABASES",
        "copies of a region's template database kept ready for new tenants (0: none); "
        "a burst of new Tenants is provisioned faster by as many",
        config.at_least(0),
    ),
    Setting(
        "migration_processes",
        "STOWAGE_OPERATOR_MIGRATION_PROCESSES",
        "processes applying tenant migrations side by side (Alembic runs one per process)",
        config.at_least(1),
    ),
    config.log_level("STOWAGE_OPERATOR_LOG_LEVEL"),
    *(
        Setting(
            name,
            variable,
            f"tracing, passed on to the workers and backup Jobs: the standard {variable}",
            env_only=True,
        )
        for name, variable in _TRACING.items()
    ),
)
