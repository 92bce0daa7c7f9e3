"""A resync of settled Tenants costs no writes and no admin connection per Tenant.

Drift repair itself (a dropped database, a deleted Secret, an edited
Deployment) is ``test_changes``'s; this file checks that a pass with nothing
to repair reads from the watches and from one catalog read per region.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
import uuid

import psycopg
import pytest

from stowage_testing.kube import KubeCluster
from stowage_testing.operator import (
    apiserver_requests,
    control_plane,
    make_region,
    operator_settings,
    running_operator,
    tenant_doc,
    wait_for_tenant,
)
from stowage_testing.postgres import PostgresServer, running_postgres

pytestmark = pytest.mark.kube

#: What the operator writes for a Tenant, by the API server's resource names.
WRITTEN = ("secrets", "configmaps", "services", "deployments", "networkpolicies",
           "poddisruptionbudgets", "cronjobs")  # fmt: skip
RESYNC_SECONDS = 3.0
TENANTS = 5


def _writes(kube: KubeCluster) -> float:
    """Applies, patches and deletes of those resources the API server has answered."""
    return sum(
        n
        for (verb, resource, _), n in apiserver_requests(kube).items()
        if resource in WRITTEN and verb in ("APPLY", "PATCH", "DELETE")
    )


def _admin_sessions(postgres: PostgresServer) -> int:
    """Sessions ever opened to the region's admin database (read from another database)."""
    with psycopg.connect(postgres.dsn("template1"), autocommit=True) as conn:
        row = conn.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = 'postgres'"
        ).fetchone()
    return int(row[0]) if row else 0


def _resyncs(caplog: pytest.LogCaptureFixture, names: set[str]) -> int:
    return sum(
        1
        for r in caplog.records
        if getattr(r, "trigger", None) == "resync" and getattr(r, "tenant", None) in names
    )


def test_resyncs_of_settled_tenants_write_nothing_and_share_one_admin_read_per_window(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="stowage_operator")
    # A control plane, a server and an operator of its own: their counters then count this
    # test's work (the tier's operator retries other tests' failing Tenants meanwhile, and
    # each retry writes).
    with control_plane() as kube, running_postgres() as postgres:
        namespace = f"quiet-{uuid.uuid4().hex[:8]}"
        kube.create_namespace(namespace)
        region = make_region(kube, postgres)
        names = {f"quiet{i}" for i in range(TENANTS)}
        settings = dataclasses.replace(
            operator_settings(kube, namespace), resync_seconds=RESYNC_SECONDS
        )
        with running_operator(settings):
            for name in sorted(names):
                kube.apply(tenant_doc(name, namespace, region, worker={"replicas": 1}))
            for name in sorted(names):
                wait_for_tenant(kube, namespace, name, timeout=120)
            # Every Tenant's first resync comes one to two intervals after it was made.
            time.sleep(2 * RESYNC_SECONDS + 1)
            resyncs, writes, sessions = (
                _resyncs(caplog, names),
                _writes(kube),
                _admin_sessions(postgres),
            )
            started = time.monotonic()
            time.sleep(3 * RESYNC_SECONDS)
            # A session's statistics reach pg_stat_database when it ends: let the last end.
            time.sleep(1.5)
            period = time.monotonic() - started
            resynced = _resyncs(caplog, names) - resyncs
            written = _writes(kube) - writes
            opened = _admin_sessions(postgres) - sessions

    # Every Tenant resynced (about three times each) ...
    assert resynced >= 2 * TENANTS, resynced
    # ... and none of those passes wrote an object (each used to apply five and delete two) ...
    assert written == 0, written
    # ... or opened an admin connection of its own: at most one catalog read per window.
    assert opened <= math.ceil(period / RESYNC_SECONDS) + 1, (opened, resynced)
