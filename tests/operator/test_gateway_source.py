"""The gateway learns tenants from Kubernetes: routable when provisioned, gone when deleted."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import pytest

from gateway.directory._directory import TenantDirectory
from gateway.directory._kube_source import KubeTenantSource
from stowage_testing.kube import KubeCluster
from stowage_testing.operator import API, tenant_doc

pytestmark = pytest.mark.kube


async def _until(predicate: Callable[[], object], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        await asyncio.sleep(0.05)


def test_gateway_source_routes_a_new_tenant_follows_its_changes_and_drops_it_when_deleted(
    kube: KubeCluster, namespace: str, region: str
) -> None:
    async def scenario() -> None:
        directory = TenantDirectory()
        source = KubeTenantSource(kubeconfig=kube.kubeconfig, namespace=namespace)
        task = asyncio.create_task(source.watch(directory.publish))
        try:
            await _until(lambda: directory.loaded, 10, "first publish")
            assert directory.all() == {}

            kube.apply(tenant_doc("acme", namespace, region))
            await _until(lambda: directory.get("acme") is not None, 60, "acme routable")
            acme = directory.get("acme")
            assert acme is not None
            assert acme.endpoint == f"tenant-acme-worker.{namespace}.svc:50051"
            assert acme.auth.audience == "https://mcp.example.com/t/acme/mcp"
            assert acme.per_user.per_minute == 120
            assert [c.name for c in acme.collections] == ["notes"]

            kube.patch(
                API,
                "Tenant",
                "acme",
                {"spec": {"rateLimits": {"perUser": {"requestsPerMinute": 60, "burst": 10}}}},
                namespace,
            )
            await _until(
                lambda: (t := directory.get("acme")) is not None and t.per_user.per_minute == 60,
                30,
                "new rate limit",
            )

            kube.delete(API, "Tenant", "acme", namespace)
            await _until(lambda: directory.get("acme") is None, 30, "acme dropped")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    asyncio.run(scenario())


def test_gateway_source_keeps_nothing_routable_without_an_endpoint(
    kube: KubeCluster, namespace: str
) -> None:
    """A Tenant the operator has not provisioned (its region is missing) is not routed to."""

    async def scenario() -> None:
        directory = TenantDirectory()
        kube.apply(tenant_doc("acme", namespace, "no-such-region"))
        source = KubeTenantSource(kubeconfig=kube.kubeconfig, namespace=namespace)
        task = asyncio.create_task(source.watch(directory.publish))
        try:
            await _until(lambda: directory.loaded, 10, "first publish")
            assert directory.get("acme") is None
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    asyncio.run(scenario())
