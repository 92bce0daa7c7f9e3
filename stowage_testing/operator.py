"""Operator test and benchmark helpers: the operator in a thread, Regions, Tenant documents,
waiting on status, reading Secrets."""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from stowage_operator import OperatorSettings, _naming, run_operator
from stowage_operator._types import TenantName

from stowage.crd import API_VERSION, REGION_KIND
from stowage_testing.kube import KubeCluster, running_kube
from stowage_testing.postgres import PostgresServer

REPO = Path(__file__).resolve().parents[1]
CRDS = REPO / "charts" / "stowage" / "crds"
ADMIN_NAMESPACE = "stowage-system"
RESYNC_SECONDS = 2.0
#: The custom resources' ``apiVersion`` (:mod:`stowage.crd`), for ``KubeCluster`` calls.
API = API_VERSION


@contextmanager
def control_plane() -> Iterator[KubeCluster]:
    """A real kube-apiserver + etcd with the Stowage CRDs installed and the operator's
    namespace made: the tier's shared one, or one of a test's (or a bench's) own whose
    API server answers no one else."""
    with running_kube() as cluster:
        for crd in sorted(CRDS.glob("*.yaml")):
            cluster.apply(crd.read_text())
        cluster.create_namespace(ADMIN_NAMESPACE)
        yield cluster


def apiserver_requests(kube: KubeCluster) -> Counter[tuple[str, str, str]]:
    """The requests ``kube``'s API server has answered so far, by verb, resource and
    subresource (its ``apiserver_request_total``; "" where a label is absent)."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for line in str(kube.request("GET", "/metrics")).splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(
            part.split("=", 1) for part in line[line.index("{") + 1 : line.index("}")].split(",")
        )
        verb, resource, sub = (labels.get(k, '""').strip('"')
                               for k in ("verb", "resource", "subresource"))  # fmt: skip
        counts[(verb, resource, sub)] += int(float(line.rsplit(" ", 1)[1]))
    return counts


@contextmanager
def running_operator(settings: OperatorSettings, timeout: float = 30.0) -> Iterator[None]:
    """Run the operator in a thread until the block ends; then stop it and wait for its thread.

    Its thread (named ``stowage-operator``) has ended when this returns, or this raises
    after ``timeout`` seconds: an operator left running would go on reconciling the
    block's Tenants and logging into whatever the next test has done to logging.
    """
    stop = threading.Event()
    ready = threading.Event()
    failure: list[BaseException] = []

    def main() -> None:
        try:
            asyncio.run(run_operator(settings, stop_flag=stop, ready_flag=ready))
        except BaseException as e:  # reported to the test below
            failure.append(e)
            ready.set()

    thread = threading.Thread(target=main, name="stowage-operator", daemon=True)
    thread.start()
    try:
        if not ready.wait(timeout) or failure:
            raise RuntimeError(f"operator did not start within {timeout}s: {failure}")
        yield
    finally:
        stop.set()
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError(f"the operator's thread did not stop within {timeout}s")


def operator_settings(kube: KubeCluster, *namespaces: str, **overrides: Any) -> OperatorSettings:
    return OperatorSettings(
        kubeconfig=kube.kubeconfig,
        namespaces=namespaces,
        worker_image="stowage:test",
        resync_seconds=RESYNC_SECONDS,
        metrics_port=0,
        **overrides,
    )


def make_region(
    kube: KubeCluster, server: PostgresServer, admin_namespace: str = ADMIN_NAMESPACE, **spec: Any
) -> str:
    """A Region (and its admin Secret in ``admin_namespace``) on ``server``; returns its name."""
    name = spec.pop("name", None) or f"r-{uuid.uuid4().hex[:8]}"
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"pg-{name}-admin", "namespace": admin_namespace},
            "stringData": {"username": server.user, "password": server.password},
        }
    )
    kube.apply(
        {
            "apiVersion": API_VERSION,
            "kind": REGION_KIND,
            "metadata": {"name": name},
            "spec": {
                "postgres": {
                    "host": server.host,
                    "port": server.port,
                    "sslMode": "disable",
                    "adminSecretRef": {"name": f"pg-{name}-admin", "namespace": admin_namespace},
                },
                "nodeSelector": {"topology.kubernetes.io/region": name},
                **spec,
            },
        }
    )
    return name


def tenant_doc(name: str, namespace: str, region: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "region": region,
        "auth": {
            "issuer": "https://login.example.com/",
            "audience": f"https://mcp.example.com/t/{name}/mcp",
        },
        "rateLimits": {
            "perUser": {"requestsPerMinute": 120, "burst": 30},
            "perTenant": {"requestsPerMinute": 6000, "burst": 600},
        },
        "retention": {"defaultDays": 365, "collections": {"cache": 1}},
        "quotas": {"maxObjects": 1000, "maxBytes": "10Mi", "maxObjectBytes": "64Ki"},
        "collections": [
            {
                "name": "notes",
                "schemaVersion": 2,
                "schema": {
                    "type": "object",
                    "properties": {"title": {"type": "string"}, "body": {"type": "string"}},
                    "required": ["title"],
                },
                "upgrades": [{"fromVersion": 1, "rename": {"text": "body"}}],
            }
        ],
        "worker": {"replicas": 2},
    }
    body.update(spec)
    return {
        "apiVersion": API,
        "kind": "Tenant",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


def condition(tenant: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    for c in ((tenant or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return dict(c)
    return {}


def wait_for_tenant(
    kube: KubeCluster,
    namespace: str,
    name: str,
    *,
    ready: bool | None = True,
    reason: str | None = None,
    generation: int | None = None,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Poll until the Ready condition says ``ready`` (and ``reason``) for the generation."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        last = kube.get(API, "Tenant", name, namespace)
        if last is not None:
            status = last.get("status") or {}
            want_generation = generation or last["metadata"]["generation"]
            c = condition(last, "Ready")
            if (
                status.get("observedGeneration") == want_generation
                and c
                and (ready is None or c["status"] == str(ready))
                and (reason is None or c.get("reason") == reason)
            ):
                return last
        time.sleep(0.1)
    raise AssertionError(f"Tenant {namespace}/{name} not as expected in {timeout}s: {last}")


def wait_gone(
    kube: KubeCluster,
    api: str,
    kind: str,
    name: str,
    namespace: str | None = None,
    timeout: float = 60.0,
) -> None:
    deadline = time.monotonic() + timeout
    while kube.get(api, kind, name, namespace) is not None:
        if time.monotonic() > deadline:
            raise AssertionError(f"{kind} {namespace}/{name} still exists after {timeout}s")
        time.sleep(0.1)


def secret_data(kube: KubeCluster, namespace: str, name: str) -> dict[str, str]:
    secret = kube.get("v1", "Secret", name, namespace)
    assert secret is not None, f"Secret {namespace}/{name} does not exist"
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def connect(data: dict[str, str], dbname: str | None = None) -> psycopg.Connection[Any]:
    """Connect with a tenant Secret's credentials (to its own database unless told)."""
    return psycopg.connect(
        host=data["host"],
        port=int(data["port"]),
        dbname=dbname or data["database"],
        user=data["username"],
        password=data["password"],
        connect_timeout=5,
        autocommit=True,
    )


def databases(dsn: str) -> set[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


def roles(dsn: str) -> set[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {row[0] for row in conn.execute("SELECT rolname FROM pg_roles")}


# Over 60 lines on purpose: the four API writes the Job controller and kubelet would make, in their
# order, each one literal object.
def _create_pod(kube: KubeCluster, metadata: dict[str, Any], spec: dict[str, Any]) -> Any:
    """A pod as the API server stores it (there is no kubelet: nobody runs it)."""
    return kube.request(
        "POST",
        f"/api/v1/namespaces/{metadata['namespace']}/pods",
        json={"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec},
    )


def finished_job(
    kube: KubeCluster,
    namespace: str,
    tenant: str,
    task: str,
    *,
    succeeded: bool,
    finished: datetime.datetime,
    result: dict[str, Any] | None = None,
    job_reason: str = "BackoffLimitExceeded",
    job_message: str = "Job has reached the specified backoff limit",
) -> str:
    """One run of the tenant's backup or drill CronJob, as the Job controller and kubelet leave it.

    The test control plane has neither, so this does their part through the real
    API server: a Job from the CronJob's jobTemplate (owned by the CronJob), its
    pod (owned by the Job, with the labels the Job controller adds), the pod's
    status with the container's termination message (``result`` as the one JSON
    line ``stowage backup`` writes to /dev/termination-log, or nothing, as when
    a run is killed), then the Job's status on its status subresource with the
    conditions a real Job controller sets (SuccessCriteriaMet then Complete, or
    FailureTarget then Failed). Returns the Job's name.
    """
    cron = kube.get("batch/v1", "CronJob", f"tenant-{tenant}-{task}", namespace)
    assert cron is not None, f"no CronJob tenant-{tenant}-{task} in {namespace}"
    template = cron["spec"]["jobTemplate"]
    name = f"tenant-{tenant}-{task}-{int(finished.timestamp()) // 60}"
    started = finished - datetime.timedelta(seconds=20)
    job = kube.request(
        "POST",
        f"/apis/batch/v1/namespaces/{namespace}/jobs",
        json={
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": template["metadata"]["labels"],
                "ownerReferences": [_owner(cron)],
            },
            "spec": template["spec"],
        },
    )
    pod_template = job["spec"]["template"]
    pod = _create_pod(
        kube,
        {
            "name": f"{name}-x7k2p",
            "namespace": namespace,
            "labels": {
                **pod_template["metadata"]["labels"],
                "batch.kubernetes.io/job-name": name,
                "job-name": name,
                "batch.kubernetes.io/controller-uid": job["metadata"]["uid"],
            },
            "ownerReferences": [_owner(job)],
        },
        pod_template["spec"],
    )
    terminated: dict[str, Any] = {
        "exitCode": 0 if succeeded else 1,
        "reason": "Completed" if succeeded else "Error",
        "startedAt": _stamp(started),
        "finishedAt": _stamp(finished),
    }
    if result is not None:
        terminated["message"] = json.dumps(result, separators=(",", ":")) + "\n"
    container = pod["spec"]["containers"][0]
    kube.request(
        "PATCH",
        f"/api/v1/namespaces/{namespace}/pods/{pod['metadata']['name']}/status",
        json={
            "status": {
                "phase": "Succeeded" if succeeded else "Failed",
                "startTime": _stamp(started),
                "containerStatuses": [
                    {
                        "name": container["name"],
                        "image": container["image"],
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "started": False,
                        "state": {"terminated": terminated},
                    }
                ],
            }
        },
        headers={"Content-Type": "application/merge-patch+json"},
    )
    at = _stamp(finished)
    if succeeded:
        status: dict[str, Any] = {
            "conditions": [
                _job_condition("SuccessCriteriaMet", "CompletionsReached", at),
                _job_condition("Complete", "CompletionsReached", at),
            ],
            "completionTime": at,
            "succeeded": 1,
        }
    else:
        status = {
            "conditions": [
                _job_condition("FailureTarget", job_reason, at, job_message),
                _job_condition("Failed", job_reason, at, job_message),
            ],
            "failed": 1,
        }
    kube.request(
        "PATCH",
        f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}/status",
        json={
            "status": {
                "startTime": _stamp(started),
                "active": 0,
                "ready": 0,
                "terminating": 0,
                "uncountedTerminatedPods": {},
                **status,
            }
        },
        headers={"Content-Type": "application/merge-patch+json"},
    )
    return name


def _owner(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _job_condition(kind: str, reason: str, at: str, message: str = "") -> dict[str, Any]:
    condition = {
        "type": kind,
        "status": "True",
        "reason": reason,
        "lastProbeTime": at,
        "lastTransitionTime": at,
    }
    if message:
        condition["message"] = message
    return condition


def _stamp(at: datetime.datetime) -> str:
    return at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def worker_pod(kube: KubeCluster, namespace: str, tenant: str, name: str, **labels: str) -> None:
    """A pod of ``tenant``'s worker as its Deployment makes one (the labels), never scheduled:
    there is no kubelet in the test control plane; :func:`report_restarts` writes its status."""
    _create_pod(
        kube,
        {
            "name": name,
            "namespace": namespace,
            "labels": {**_naming.labels(TenantName(tenant)), **labels},
        },
        {"containers": [{"name": "worker", "image": "stowage:test"}]},
    )


def report_restarts(kube: KubeCluster, namespace: str, name: str, count: int, reason: str) -> None:
    """The status the kubelet writes for pod ``name`` once its container was restarted
    ``count`` times, the last exit for ``reason`` (``OOMKilled``, ``Error``)."""
    status: dict[str, Any] = {
        "name": "worker",
        "image": "stowage:test",
        "imageID": "",
        "ready": True,
        "restartCount": count,
        "started": True,
        "state": {"running": {"startedAt": "2026-12-07T10:00:00Z"}},
        "lastState": {
            "terminated": {
                "exitCode": 137,
                "reason": reason,
                "startedAt": "2026-12-07T09:59:00Z",
                "finishedAt": "2026-12-07T09:59:58Z",
            }
        },
    }
    kube.request(
        "PATCH",
        f"/api/v1/namespaces/{namespace}/pods/{name}/status",
        json={"status": {"phase": "Running", "containerStatuses": [status]}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
