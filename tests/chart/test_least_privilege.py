"""The chart's RBAC is enough for each component, and no more.

The chart is installed with ``helm install`` into the real API server (RBAC
on). The operator then runs as a host process with exactly the container
arguments and environment of the installed Deployment, authenticated as the
chart's operator ServiceAccount (a token from the TokenRequest API), and
provisions a Tenant end to end on the real PostgreSQL, then deletes it; a
second Tenant, in a Region with backup storage, gets its backup and drill
CronJobs, and what its (simulated) Jobs ended with reaches its status. The
gateway's ServiceAccount is asked, with its own token, what it may do.
"""

from __future__ import annotations

import datetime
import json
import os
import ssl
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from stowage_testing.kube import KubeCluster
from stowage_testing.operator import (
    condition,
    finished_job,
    make_region,
    secret_data,
    tenant_doc,
    wait_for_tenant,
    wait_gone,
)
from stowage_testing.postgres import PostgresServer
from stowage_testing.tools import eventually, free_port, terminate
from tests.chart.support import CHART, Helm, container, find, plain_env, restricted_namespace

pytestmark = [pytest.mark.kube, pytest.mark.helm, pytest.mark.postgres]

NAMESPACE = "stowage-system"
RELEASE = "stowage"
API = "stowage.dev/v1alpha1"


@dataclass(frozen=True)
class Release:
    manifest: list[dict[str, Any]]
    metrics_port: int
    health_port: int
    gateway_port: int

    def deployment(self, suffix: str) -> dict[str, Any]:
        return find(self.manifest, "Deployment", suffix)


@pytest.fixture(scope="module")
def release(kube: KubeCluster, cluster_helm: Helm) -> Release:
    """The chart installed with its defaults, but host ports free for the operator run below."""
    restricted_namespace(kube, NAMESPACE)
    metrics_port, health_port, gateway_port = free_port(), free_port(), free_port()
    cluster_helm.run(
        "install",
        RELEASE,
        str(CHART),
        "-n",
        NAMESPACE,
        "--set",
        f"operator.metrics.port={metrics_port}",
        "--set",
        f"operator.health.port={health_port}",
        "--set",
        "operator.resyncSeconds=3",
        "--set",
        f"gateway.port={gateway_port}",
    )
    manifest = cluster_helm.run("get", "manifest", RELEASE, "-n", NAMESPACE).stdout
    docs = [d for d in yaml.safe_load_all(manifest) if d]
    return Release(docs, metrics_port, health_port, gateway_port)


def token_client(kube: KubeCluster, token: str) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(kube.ca_cert))
    return httpx.Client(
        base_url=kube.server,
        verify=context,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30.0,
    )


def allowed(
    client: httpx.Client,
    verb: str,
    resource: str,
    group: str = "",
    namespace: str | None = None,
    subresource: str = "",
) -> bool:
    """SelfSubjectAccessReview with the client's own identity."""
    attributes: dict[str, str] = {"verb": verb, "resource": resource, "group": group}
    if namespace:
        attributes["namespace"] = namespace
    if subresource:
        attributes["subresource"] = subresource
    response = client.post(
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        json={
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes},
        },
    )
    response.raise_for_status()
    return bool(response.json()["status"]["allowed"])


def write_kubeconfig(path: Path, kube: KubeCluster, token: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "test",
                        "cluster": {
                            "server": kube.server,
                            "certificate-authority": str(kube.ca_cert),
                        },
                    }
                ],
                "users": [{"name": "operator", "user": {"token": token}}],
                "contexts": [{"name": "test", "context": {"cluster": "test", "user": "operator"}}],
                "current-context": "test",
            }
        )
    )
    path.chmod(0o600)
    return path


@contextmanager
def running_as_deployed(
    kube: KubeCluster,
    deployment: dict[str, Any],
    name: str,
    workdir: Path,
    extra_args: tuple[str, ...] = (),
    namespace: str = NAMESPACE,
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """The Deployment's container as a host process: its args and literal env, its identity.

    In the pod the ServiceAccount token is mounted; here the same identity's
    token (TokenRequest) is in a kubeconfig, given as $KUBECONFIG (the operator
    reads it) and as ``extra_args`` where a command wants a flag.
    """
    spec = deployment["spec"]["template"]["spec"]
    c = container(deployment, name)
    token = kube.service_account_token(namespace, spec["serviceAccountName"])
    kubeconfig = write_kubeconfig(workdir / f"{name}.kubeconfig", kube, token)
    args = [a.replace("{kubeconfig}", str(kubeconfig)) for a in (*c["args"], *extra_args)]
    stowage = Path(sys.executable).with_name("stowage")
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(stowage), *args],
            env={
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": str(workdir),
                **plain_env(c),
                "KUBECONFIG": str(kubeconfig),
            },
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
    try:
        yield proc, log_path
    finally:
        terminate(proc, grace=30)


@pytest.fixture
def chart_operator(
    kube: KubeCluster, release: Release, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """``stowage operator`` on this host, exactly as the installed Deployment runs it."""
    deployment = release.deployment("-operator")
    env = container(deployment, "operator").get("env") or []
    assert all("value" in e for e in env), "the operator's environment is all literal"
    with running_as_deployed(kube, deployment, "operator", tmp_path) as running:
        yield running


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def test_operator_provisions_and_deletes_a_tenant_with_only_the_charts_rbac(
    kube: KubeCluster,
    release: Release,
    postgres: PostgresServer,
    chart_operator: tuple[subprocess.Popen[bytes], Path],
) -> None:
    proc, log = chart_operator
    namespace = f"tenants-{uuid.uuid4().hex[:6]}"
    kube.create_namespace(namespace)
    region = make_region(kube, postgres, admin_namespace=NAMESPACE)
    kube.apply(tenant_doc("acme", namespace, region, deletionPolicy="Delete"))

    tenant = wait_for_tenant(kube, namespace, "acme", ready=True, timeout=90)
    assert proc.poll() is None, log.read_text()
    assert tenant["status"]["endpoint"] == f"tenant-acme-worker.{namespace}.svc:50051"
    assert secret_data(kube, namespace, "tenant-acme-db")["username"]

    # The worker runs the chart's image and admits only this release's gateway.
    operator_env = plain_env(container(release.deployment("-operator"), "operator"))
    worker = kube.get("apps/v1", "Deployment", "tenant-acme-worker", namespace)
    assert worker is not None
    assert container(worker, "worker")["image"] == operator_env["STOWAGE_WORKER_IMAGE"]
    policy = kube.get("networking.k8s.io/v1", "NetworkPolicy", "tenant-acme-worker", namespace)
    assert policy is not None
    grpc, metrics = policy["spec"]["ingress"]
    admitted = grpc["from"][0]["podSelector"]["matchLabels"]
    gateway_labels = release.deployment("-gateway")["spec"]["template"]["metadata"]["labels"]
    assert admitted.items() <= gateway_labels.items()
    # ... in the release's namespace only; its metrics port admits the chart's scrapers.
    release_namespace = {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}}
    assert grpc["from"][0]["namespaceSelector"] == release_namespace
    assert metrics["from"] == json.loads(operator_env["STOWAGE_OPERATOR_METRICS_FROM"])
    assert metrics["ports"] == [{"protocol": "TCP", "port": 9100}]

    # Its probes and metrics answer where the Deployment points the kubelet.
    eventually(lambda: answers(f"http://127.0.0.1:{release.health_port}/healthz"), 30, "healthz")
    metrics = httpx.get(f"http://127.0.0.1:{release.metrics_port}/metrics", timeout=5.0)
    assert "stowage_operator" in metrics.text

    # Deleting the Tenant: the operator removes what it made and its finalizer.
    kube.delete(API, "Tenant", "acme", namespace)
    wait_gone(kube, API, "Tenant", "acme", namespace, timeout=60)
    assert kube.get("apps/v1", "Deployment", "tenant-acme-worker", namespace) is None
    assert kube.get("v1", "Secret", "tenant-acme-db", namespace) is None

    text = log.read_text()
    assert "forbidden" not in text.lower(), text
    assert "Not enough permissions" not in text, text


def test_operator_schedules_backups_and_reads_their_outcome_with_only_the_charts_rbac(
    kube: KubeCluster,
    release: Release,
    postgres: PostgresServer,
    chart_operator: tuple[subprocess.Popen[bytes], Path],
) -> None:
    """CronJobs are applied (create, patch) and deleted; finished Jobs and pods are listed."""
    proc, log = chart_operator
    namespace = f"tenants-{uuid.uuid4().hex[:6]}"
    kube.create_namespace(namespace)
    region = make_region(
        kube,
        postgres,
        admin_namespace=NAMESPACE,
        backup={"persistentVolumeClaim": {"claimName": "region-backups"}},
    )
    kube.apply(tenant_doc("acme", namespace, region, deletionPolicy="Delete"))

    tenant = wait_for_tenant(kube, namespace, "acme", ready=True, timeout=90)
    scheduled = condition(tenant, "BackupScheduled")
    assert (scheduled["status"], scheduled["reason"]) == ("True", "Scheduled"), scheduled
    for task in ("backup", "drill"):
        assert kube.get("batch/v1", "CronJob", f"tenant-acme-{task}", namespace), task

    # A drill Job that failed: the operator lists it and its pod, and says so in the status.
    finished = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    finished_job(
        kube,
        namespace,
        "acme",
        "drill",
        succeeded=False,
        finished=finished,
        result={"command": "drill", "result": "Failed", "reason": "Corrupt", "message": "bad"},
    )

    def drill_reported() -> bool:
        found = kube.get(API, "Tenant", "acme", namespace) or {}
        drill = ((found.get("status") or {}).get("backup") or {}).get("lastDrill") or {}
        return (drill.get("result"), drill.get("reason")) == ("Failed", "Corrupt")

    eventually(drill_reported, 30, "status.backup.lastDrill from the failed drill Job")
    assert proc.poll() is None, log.read_text()

    kube.delete(API, "Tenant", "acme", namespace)
    wait_gone(kube, API, "Tenant", "acme", namespace, timeout=60)
    for task in ("backup", "drill"):
        assert kube.get("batch/v1", "CronJob", f"tenant-acme-{task}", namespace) is None, task

    text = log.read_text()
    assert "forbidden" not in text.lower(), text
    assert "backup CronJobs not applied" not in text, text
    assert "backup results not read" not in text, text


#: What the operator writes for a Tenant and watches (never Secrets: that reads them all).
WATCHED_FOR_DRIFT = (
    ("deployments", "apps"),
    ("configmaps", ""),
    ("services", ""),
    ("networkpolicies", "networking.k8s.io"),
    ("poddisruptionbudgets", "policy"),
    ("cronjobs", "batch"),
)


def test_operator_service_account_cannot_do_more_than_it_needs(
    kube: KubeCluster, release: Release
) -> None:
    account = release.deployment("-operator")["spec"]["template"]["spec"]["serviceAccountName"]
    with token_client(kube, kube.service_account_token(NAMESPACE, account)) as client:
        assert allowed(client, "watch", "tenants", "stowage.dev")
        assert allowed(client, "patch", "tenants", "stowage.dev", "any", subresource="status")
        assert allowed(client, "get", "secrets", namespace="any")
        assert not allowed(client, "list", "secrets", namespace="any")
        assert not allowed(client, "create", "tenants", "stowage.dev", "any")
        assert not allowed(client, "delete", "regions", "stowage.dev")
        assert not allowed(client, "watch", "secrets", namespace="any")
        # The worker's objects and the backup CronJobs: written, and watched for drift.
        for resource, group in WATCHED_FOR_DRIFT:
            for verb in ("list", "watch", "create", "patch", "delete"):
                assert allowed(client, verb, resource, group, "any"), (verb, resource)
            assert not allowed(client, "update", resource, group, "any"), resource
        # Backups: finished Jobs and their pods listed and watched, no more.
        for verb in ("list", "watch"):
            assert allowed(client, verb, "jobs", "batch", "any"), verb
            assert allowed(client, verb, "pods", namespace="any"), verb
        for verb in ("get", "create", "delete"):
            assert not allowed(client, verb, "pods", namespace="any"), verb
            assert not allowed(client, verb, "jobs", "batch", "any"), verb
        assert not allowed(client, "get", "pods", namespace="any", subresource="log")
        assert not allowed(client, "create", "pods", namespace="any", subresource="exec")
        assert not allowed(client, "create", "clusterrolebindings", "rbac.authorization.k8s.io")
        assert not allowed(client, "create", "kopfpeerings", "kopf.dev", "any")
        # The ConfigMaps a Tenant's components take their HTML from, read by name.
        assert allowed(client, "get", "configmaps", namespace="any")


def test_gateway_service_account_reads_tenants_and_cannot_read_secrets(
    kube: KubeCluster, release: Release
) -> None:
    account = release.deployment("-gateway")["spec"]["template"]["spec"]["serviceAccountName"]
    with token_client(kube, kube.service_account_token(NAMESPACE, account)) as client:
        for verb in ("get", "list", "watch"):
            assert allowed(client, verb, "tenants", "stowage.dev", "any"), verb
        for verb in ("create", "patch", "update", "delete"):
            assert not allowed(client, verb, "tenants", "stowage.dev", "any"), verb
        assert not allowed(client, "patch", "tenants", "stowage.dev", "any", subresource="status")
        for verb in ("get", "list", "watch"):
            assert not allowed(client, verb, "secrets", namespace=NAMESPACE), verb
            assert not allowed(client, verb, "regions", "stowage.dev"), verb
            # Components' HTML held in ConfigMaps (htmlFrom): read, never written.
            assert allowed(client, verb, "configmaps", namespace="any"), verb
        for verb in ("create", "patch", "update", "delete"):
            assert not allowed(client, verb, "configmaps", namespace="any"), verb

        # And the API server itself answers so.
        assert client.get(f"/apis/{API}/tenants").status_code == 200
        assert client.get(f"/api/v1/namespaces/{NAMESPACE}/secrets").status_code == 403


def test_gateway_serves_tenants_it_reads_with_only_its_service_account(
    kube: KubeCluster, release: Release, tmp_path: Path
) -> None:
    namespace = f"tenants-{uuid.uuid4().hex[:6]}"
    kube.create_namespace(namespace)
    kube.apply(tenant_doc("routed", namespace, "eu"))
    endpoint = f"tenant-routed-worker.{namespace}.svc:50051"  # as the operator publishes it
    kube.request(
        "PATCH",
        kube.path(API, "Tenant", "routed", namespace) + "/status",
        json={"status": {"endpoint": endpoint}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    deployment = release.deployment("-gateway")
    readyz = f"http://127.0.0.1:{release.gateway_port}/readyz"
    with running_as_deployed(
        kube, deployment, "gateway", tmp_path, extra_args=("--kubeconfig={kubeconfig}",)
    ) as (proc, log):

        def routes_the_tenant() -> bool:
            assert proc.poll() is None, log.read_text()
            try:
                response = httpx.get(readyz, timeout=2.0)
            except httpx.HTTPError:
                return False
            return response.status_code == 200 and response.json()["tenants"] >= 1

        eventually(routes_the_tenant, 30, "the gateway lists Tenants and routes one")
        metadata = httpx.get(
            f"http://127.0.0.1:{release.gateway_port}"
            "/.well-known/oauth-protected-resource/t/routed/mcp",
            timeout=5.0,
        )
        assert metadata.status_code == 200
        assert metadata.json()["resource"] == "https://mcp.example.com/t/routed/mcp"
    assert "forbidden" not in log.read_text().lower()
