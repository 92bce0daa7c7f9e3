"""A worker killed for memory reaches the operator's metrics, and so the OOM alert.

There is no kubelet in this test control plane: each test writes a worker pod's
status the way the kubelet does after a restart (``restartCount`` and the
container's ``lastState.terminated.reason``) through the real API server, and
reads the package's in-process operator's metrics. The e2e tier kills a real
worker for memory (tests/e2e/test_install.py).
"""

from __future__ import annotations

from prometheus_client import REGISTRY

from stowage_testing.kube import KubeCluster
from stowage_testing.operator import report_restarts, worker_pod
from stowage_testing.tools import eventually


def _sample(metric: str, namespace: str, tenant: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(metric, {"namespace": namespace, "tenant": tenant, **labels})


def test_a_worker_restarted_after_an_oom_kill_shows_in_the_metrics(
    kube: KubeCluster, namespace: str
) -> None:
    worker_pod(kube, namespace, "acme", "tenant-acme-worker-a")
    worker_pod(kube, namespace, "acme", "tenant-acme-worker-b")
    worker_pod(kube, namespace, "globex", "tenant-globex-worker-a")
    # A backup pod of acme that ended OOMKilled is not a worker: not counted.
    worker_pod(kube, namespace, "acme", "tenant-acme-backup-x", **{"stowage.dev/task": "backup"})
    report_restarts(kube, namespace, "tenant-acme-backup-x", 1, "OOMKilled")

    restarts = "stowage_tenant_worker_restarts"
    terminated = "stowage_tenant_worker_last_terminated"
    eventually(lambda: _sample(restarts, namespace, "acme") == 0, what="acme's workers reported")

    report_restarts(kube, namespace, "tenant-acme-worker-a", 2, "OOMKilled")
    report_restarts(kube, namespace, "tenant-acme-worker-b", 1, "OOMKilled")
    report_restarts(kube, namespace, "tenant-globex-worker-a", 1, "Error")
    eventually(
        lambda: _sample(terminated, namespace, "acme", reason="OOMKilled") == 2,
        what="acme's two OOM kills reported",
    )
    assert _sample(restarts, namespace, "acme") == 3
    assert _sample(restarts, namespace, "globex") == 1
    assert _sample(terminated, namespace, "globex", reason="Error") == 1
    assert _sample(terminated, namespace, "globex", reason="OOMKilled") is None

    # A replaced pod takes its restarts with it.
    kube.request(
        "DELETE",
        f"/api/v1/namespaces/{namespace}/pods/tenant-acme-worker-a",
        params={"gracePeriodSeconds": "0"},
    )
    eventually(
        lambda: _sample(terminated, namespace, "acme", reason="OOMKilled") == 1,
        what="the deleted pod's kill no longer counted",
    )
    assert _sample(restarts, namespace, "acme") == 1
