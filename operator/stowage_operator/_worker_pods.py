"""How the tenants' worker containers ended: restarts and the reason of each last exit.

A worker killed for memory (``OOMKilled``: over its limit, or chosen by the
kernel when the node ran short) is restarted by the kubelet and is Ready again
a few seconds later; the Tenant never looks unhealthy for long, and a worker
that runs out of memory again and again would go unseen. One watch of the
workers' pods (``_watches``; the workers' label, across the namespaces the
operator serves) keeps what the kubelet reports of each container, and the
operator's /metrics turns it into two series per Tenant at each scrape:

``stowage_tenant_worker_restarts{namespace,tenant}``
    the restarts of the Tenant's current worker containers, summed (it falls
    when a pod is replaced; ``increase()`` reads that as a reset);
``stowage_tenant_worker_last_terminated{namespace,tenant,reason}``
    how many of them last ended for ``reason`` (``OOMKilled``, ``Error``, …).

They are what the ``StowageTenantWorkerOOMKilled`` alert reads. While the watch
is not current the operator reports neither rather than a stale count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from stowage_operator._kube import Kube
from stowage_operator._types import Body
from stowage_operator._watches import TENANT_LABEL, Watched

#: The tenants' worker pods (``_naming.labels``), not their backup and drill pods.
SELECTOR = "app.kubernetes.io/name=stowage-worker,!stowage.dev/task"


def _slim(pod: Body) -> Body:
    """What the metrics read: the pod's keys and each container's restarts and last exit."""
    meta = pod.get("metadata") or {}
    containers = []
    for status in (pod.get("status") or {}).get("containerStatuses") or ():
        terminated = (status.get("lastState") or {}).get("terminated") or {}
        containers.append(
            {
                "restartCount": int(status.get("restartCount") or 0),
                "lastState": {"terminated": {"reason": terminated.get("reason")}}
                if terminated
                else {},
            }
        )
    return {
        "metadata": {
            "uid": meta.get("uid"),
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "labels": {TENANT_LABEL: (meta.get("labels") or {}).get(TENANT_LABEL, "")},
        },
        "status": {"containerStatuses": containers},
    }


class WorkerPods(Collector):
    """The workers' pods by watch, reported as metrics when the registry is collected."""

    def __init__(self, kube: Kube, patterns: tuple[str, ...] = ()) -> None:
        self._pods = Watched(kube, "v1", "Pod", SELECTOR, patterns, slim=_slim)

    def start(self) -> None:
        self._pods.start()

    async def stop(self) -> None:
        await self._pods.stop()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        restarts = GaugeMetricFamily(
            "stowage_tenant_worker_restarts",
            "Restarts of the Tenant's current worker containers, summed.",
            labels=["namespace", "tenant"],
        )
        terminated = GaugeMetricFamily(
            "stowage_tenant_worker_last_terminated",
            "The Tenant's worker containers whose last exit had this reason "
            "(OOMKilled: killed for memory).",
            labels=["namespace", "tenant", "reason"],
        )
        if self._pods.synced:
            counts, reasons = _count(self._pods.objects())
            for (namespace, tenant), value in sorted(counts.items()):
                restarts.add_metric([namespace, tenant], value)
            for (namespace, tenant, reason), value in sorted(reasons.items()):
                terminated.add_metric([namespace, tenant, reason], value)
        yield restarts
        yield terminated

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())  # collected at each scrape; nothing to check at registration


def _count(
    pods: Iterable[Body],
) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str, str]]]:
    counts: Counter[tuple[str, str]] = Counter()
    reasons: Counter[tuple[str, str, str]] = Counter()
    for pod in pods:
        meta: dict[str, Any] = pod["metadata"]
        key = (str(meta["namespace"]), str(meta["labels"][TENANT_LABEL]))
        if not key[1]:
            continue
        counts[key] += 0  # a running worker that never restarted reports 0
        for container in pod["status"]["containerStatuses"]:
            counts[key] += container["restartCount"]
            reason = (container["lastState"].get("terminated") or {}).get("reason")
            if reason:
                reasons[(*key, str(reason))] += 1
    return counts, reasons


__all__ = ["SELECTOR", "WorkerPods"]
