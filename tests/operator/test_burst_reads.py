"""A burst of new Tenants shares the reads of its Region and admin Secret, and still sees
a change to them (or their absence) made a moment before.

On a control plane of its own: the API server's request counters then count this
operator's requests only (the tier's operator resyncs other tests' Tenants).
"""

from __future__ import annotations

import dataclasses
import time
import uuid

import pytest
from stowage_operator._recent import SHARED_SECONDS

from stowage_testing.operator import (
    ADMIN_NAMESPACE,
    API,
    apiserver_requests,
    condition,
    control_plane,
    make_region,
    operator_settings,
    running_operator,
    tenant_doc,
    wait_for_tenant,
)
from stowage_testing.postgres import PostgresServer

pytestmark = pytest.mark.kube

TENANTS = 20


def test_a_burst_of_new_tenants_reads_its_region_and_admin_secret_a_few_times(
    postgres: PostgresServer,
) -> None:
    with control_plane() as kube:
        namespace = f"burst-{uuid.uuid4().hex[:8]}"
        kube.create_namespace(namespace)
        region = make_region(kube, postgres)
        # No resync while the burst provisions: its reads are the creates' own.
        settings = dataclasses.replace(operator_settings(kube, namespace), resync_seconds=600)
        with running_operator(settings):
            before = apiserver_requests(kube)
            names = [f"burst{i}" for i in range(TENANTS)]
            for name in names:
                kube.apply(tenant_doc(name, namespace, region, worker={"replicas": 1}))
            for name in names:
                wait_for_tenant(kube, namespace, name, timeout=120)
            made = apiserver_requests(kube) - before

            # The admin Secret changed: a Tenant created a moment later connects with the new
            # credentials (the reads the burst shared are no use to it by then) ...
            kube.apply(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": f"pg-{region}-admin", "namespace": ADMIN_NAMESPACE},
                    "stringData": {"username": "rotated", "password": "not-yet"},
                }
            )
            time.sleep(SHARED_SECONDS)
            kube.apply(tenant_doc("locked", namespace, region, worker={"replicas": 1}))
            tenant = wait_for_tenant(
                kube, namespace, "locked", ready=False, reason="DatabaseUnreachable"
            )
            assert "as rotated" in condition(tenant, "Ready")["message"]

            # ... the Region closed to new Tenants: one created a moment later is refused ...
            kube.patch(API, "Region", region, {"spec": {"acceptingTenants": False}})
            time.sleep(SHARED_SECONDS)
            kube.apply(tenant_doc("late", namespace, region, worker={"replicas": 1}))
            wait_for_tenant(kube, namespace, "late", ready=False, reason="RegionNotAccepting")

            # ... and Tenants of a Region that does not exist are told so, all of them.
            missing = f"r-{uuid.uuid4().hex[:8]}"
            for name in ("lost0", "lost1", "lost2"):
                kube.apply(tenant_doc(name, namespace, missing, worker={"replicas": 1}))
            for name in ("lost0", "lost1", "lost2"):
                tenant = wait_for_tenant(
                    kube, namespace, name, ready=False, reason="RegionNotFound"
                )
                assert missing in condition(tenant, "Ready")["message"]

    # Each new Tenant's Secret is read (its password, if it had one) ...
    tenant_secrets = TENANTS
    # ... but the Region and its admin Secret were read once per burst, give or take a few,
    # not once per Tenant each.
    assert made[("GET", "regions", "")] <= TENANTS // 4, made
    assert made[("GET", "secrets", "")] - tenant_secrets <= TENANTS // 4, made
