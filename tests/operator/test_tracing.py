"""The operator traces each reconciliation, step by step, and passes tracing on to the workers.

The real ``stowage operator`` process (not the tests' in-process one: tracing is
set up once per process) against the real API server and PostgreSQL, sending
its spans to a real Jaeger.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from stowage_testing.kube import KubeCluster
from stowage_testing.operator import tenant_doc, wait_for_tenant
from stowage_testing.tools import eventually, terminate
from stowage_testing.traces import TracedSpan, running_jaeger, span_tree

pytestmark = pytest.mark.kube

STEPS = {"tenant.region", "tenant.database", "tenant.worker", "tenant.backups", "tenant.status"}


def test_a_reconciliation_is_a_trace_of_its_steps_and_the_worker_gets_the_tracing_variables(
    kube: KubeCluster, region: str, tmp_path: Path
) -> None:
    namespace = f"tr-{uuid.uuid4().hex[:8]}"  # not op-*: the package's operator leaves it be
    kube.create_namespace(namespace)
    with running_jaeger() as jaeger, (tmp_path / "operator.log").open("wb") as log:
        env = {
            **os.environ,
            **jaeger.otel_env,
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=test",
            "STOWAGE_KUBECONFIG": str(kube.kubeconfig),
            "STOWAGE_OPERATOR_NAMESPACES": namespace,
            "STOWAGE_WORKER_IMAGE": "stowage:test",
            "STOWAGE_OPERATOR_METRICS_PORT": "0",
        }
        operator = subprocess.Popen(
            [sys.executable, "-m", "stowage", "operator"], stdout=log, stderr=log, env=env
        )
        try:
            kube.apply(tenant_doc("acme", namespace, region))
            wait_for_tenant(kube, namespace, "acme")

            def reconciled() -> list[TracedSpan]:
                for spans in jaeger.search("stowage-operator", "tenant.reconcile"):
                    names = {s.name for s in spans}
                    root = [s for s in spans if s.name == "tenant.reconcile"]
                    if names >= STEPS and root[0].tags.get("k8s.namespace.name") == namespace:
                        return spans
                return []

            eventually(reconciled, timeout=20, what="the reconciliation's trace in Jaeger")
            spans = reconciled()
        finally:
            terminate(operator)
    print(f"\n{span_tree(spans)}")
    root = next(s for s in spans if s.name == "tenant.reconcile")
    assert root.tags["stowage.tenant"] == "acme" and root.parent_id is None
    assert all(s.parent_id == root.span_id for s in spans if s.name in STEPS)

    deployment = kube.get("apps/v1", "Deployment", "tenant-acme-worker", namespace)
    assert deployment is not None
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env_vars = {e["name"]: e.get("value") for e in container["env"]}
    assert env_vars["OTEL_EXPORTER_OTLP_ENDPOINT"] == jaeger.otlp_endpoint
    assert env_vars["OTEL_RESOURCE_ATTRIBUTES"] == "deployment.environment.name=test"
