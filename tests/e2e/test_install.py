"""The chart running for real: installed from a registry, pods Ready, MCP calls through them.

One release for the module (tests/e2e/release.py): a real MCP client with a real
token calls tools at the gateway's NodePort; the call goes gateway pod → worker
pod → PostgreSQL, and the test reads the tenant's database directly to see it.
Then ``helm test``, the pods' security as containerd ran them, the backup and
restore drill Jobs, the release's NetworkPolicies on live traffic, pods deleted
under traffic and ``helm upgrade``/``rollback`` under traffic (tests/e2e/traffic.py;
their tables are printed for the note, and what must hold is asserted: no
acknowledged write lost).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from stowage_testing.cluster import Cluster
from stowage_testing.gateway import mcp_client, tool_error
from stowage_testing.images import push_image
from stowage_testing.operator import API, secret_data, tenant_doc
from tests.e2e.release import (
    NAMESPACE,
    REGION,
    RELEASE,
    STOWAGE_REPOSITORY,
    TENANT,
    TENANTS,
    Release,
    installed_release,
)
from tests.e2e.traffic import Outcome, table, traffic_during
from tests.monitoring.test_rules import RULES, alerts, promtool

pytestmark = [pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def release(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    with installed_release(cluster, tmp_path_factory.mktemp("release")) as installed:
        yield installed


def tenant_database(release: Release) -> psycopg.Connection[Any]:
    """The tenant's own database, with the credentials the operator gave its workers."""
    data = secret_data(release.cluster.kube, TENANTS, f"tenant-{TENANT}-db")
    return psycopg.connect(
        host=data["host"], port=int(data["port"]), dbname=data["database"],
        user=data["username"], password=data["password"], connect_timeout=5, autocommit=True,
    )  # fmt: skip


def tenant_rows(release: Release, object_id: str) -> list[tuple[Any, ...]]:
    """The stored rows with this id."""
    with tenant_database(release) as conn:
        return conn.execute(
            "SELECT object_id, version, data FROM objects WHERE object_id = %s", (object_id,)
        ).fetchall()


def release_pods(release: Release) -> list[dict[str, Any]]:
    kube = release.cluster.kube
    return [*kube.list("v1", "Pod", NAMESPACE), *kube.list("v1", "Pod", TENANTS)]


def print_pods(release: Release) -> None:
    """``kubectl get pods -A``, for the note."""
    print(f"\n{'NAMESPACE':<18}{'NAME':<46}{'READY':<7}{'STATUS':<11}{'RESTARTS':<9}NODE")
    for namespace in ("kube-system", NAMESPACE, TENANTS):
        for pod in release.cluster.kube.list("v1", "Pod", namespace):
            statuses = (pod.get("status") or {}).get("containerStatuses") or []
            ready = sum(1 for s in statuses if s.get("ready"))
            restarts = sum(s.get("restartCount", 0) for s in statuses)
            print(
                f"{namespace:<18}{pod['metadata']['name']:<46}{ready}/{len(statuses):<5}"
                f"{pod['status'].get('phase', ''):<11}{restarts:<9}{pod['spec'].get('nodeName')}"
            )


def test_a_client_saves_gets_lists_and_conflicts_through_gateway_and_worker_pods(
    release: Release,
) -> None:
    print_pods(release)
    item = f"note-{uuid.uuid4().hex[:8]}"

    async def calls() -> dict[str, Any]:
        async with mcp_client(release.mcp_url, release.token("alice")) as client:
            saved = await client.call_tool("items_save", {"id": item, "data": {"text": "one"}})
            replaced = await client.call_tool(
                "items_save", {"id": item, "data": {"text": "two"}, "expected_version": 1}
            )
            stale = await client.call_tool(
                "items_save", {"id": item, "data": {"text": "three"}, "expected_version": 1}
            )
            got = await client.call_tool("items_get", {"id": item})
            listed = await client.call_tool("items_list", {})
        return {"saved": saved, "replaced": replaced, "stale": stale, "got": got, "listed": listed}

    results = anyio.run(calls)
    assert results["saved"].structured_content["object"]["version"] == 1
    assert results["replaced"].structured_content["object"]["version"] == 2
    conflict = tool_error(results["stale"])["error"]
    assert conflict["code"] == "conflict"
    assert (conflict["current"]["version"], conflict["current"]["data"]) == (2, {"text": "two"})
    assert results["got"].structured_content["object"]["data"] == {"text": "two"}
    assert item in [o["id"] for o in results["listed"].structured_content["objects"]]
    # The write reached the tenant's own database, and the stale one did not.
    [(object_id, version, data)] = tenant_rows(release, item)
    assert (object_id, version, data) == (item, 2, {"text": "two"})


def test_helm_test_runs_the_dogfood_pod_and_it_passes(release: Release) -> None:
    done = release.helm.run("test", RELEASE, "-n", NAMESPACE, "--logs", timeout=300)
    print(f"\n$ helm test {RELEASE} -n {NAMESPACE} --logs\n{done.stdout}")
    assert "Phase:          Succeeded" in done.stdout, done.stdout


def test_every_pod_of_the_release_runs_as_non_root_on_a_read_only_root_filesystem(
    release: Release,
) -> None:
    pods = [p for p in release_pods(release) if p["status"].get("phase") == "Running"]
    components = {p["metadata"]["labels"].get("app.kubernetes.io/component") for p in pods}
    assert {"operator", "gateway", "redis"} <= components, components
    assert any(p["metadata"]["namespace"] == TENANTS for p in pods)
    for pod in pods:
        name = pod["metadata"]["name"]
        assert pod["spec"]["securityContext"].get("runAsNonRoot") is True, name
        for status in pod["status"]["containerStatuses"]:
            assert status["ready"] and "running" in status["state"], (name, status)
            # What containerd actually ran: the OCI spec of the live container.
            container_id = status["containerID"].removeprefix("containerd://")
            spec = json.loads(release.cluster.ctr("containers", "info", container_id))["Spec"]
            assert spec["process"]["user"]["uid"] != 0, (name, spec["process"]["user"])
            assert spec["root"].get("readonly") is True, (name, spec["root"])
            assert spec["process"].get("noNewPrivileges") is True, name


def _pod_of(release: Release, namespace: str, prefix: str) -> str:
    pods = [
        p["metadata"]["name"]
        for p in release.cluster.kube.list("v1", "Pod", namespace)
        if p["metadata"]["name"].startswith(prefix) and not p["metadata"].get("deletionTimestamp")
    ]
    assert pods, f"no {prefix}* pod in {namespace}"
    return sorted(pods)[0]


def _delete_pod(release: Release, namespace: str, deployment: str) -> Callable[[], None]:
    """Delete one pod of ``deployment`` (gracefully), then wait for its replacement Ready."""

    def change() -> None:
        kube, cluster = release.cluster.kube, release.cluster
        name = _pod_of(release, namespace, f"{deployment}-")
        kube.delete("v1", "Pod", name, namespace)
        cluster.wait_for(
            lambda: kube.get("v1", "Pod", name, namespace) is None, 120, f"pod {name} gone"
        )
        cluster.wait_for_rollout(namespace, deployment, 180)

    return change


def _read_back(release: Release, outcome: Outcome) -> None:
    """Every acknowledged write, looked up in the tenant's database; ``outcome.lost`` set."""
    with tenant_database(release) as conn:
        found = {
            row[0]
            for row in conn.execute(
                "SELECT object_id FROM objects WHERE object_id = ANY(%s)", (outcome.acknowledged,)
            )
        }
    outcome.lost = len(set(outcome.acknowledged) - found)


def _show(title: str, outcomes: list[Outcome]) -> None:
    print(f"\n{title}\n{table(outcomes)}")
    for o in outcomes:
        for at, failure in o.failures[:5]:
            print(f"  {o.what}, {at - o.change_started:+.1f}s after it began: {failure}")


def test_deleting_worker_gateway_and_operator_pods_under_traffic_loses_no_acknowledged_write(
    release: Release,
) -> None:
    outcomes = []
    for what, namespace, deployment in (
        ("worker pod deleted", TENANTS, f"tenant-{TENANT}-worker"),
        ("gateway pod deleted", NAMESPACE, f"{RELEASE}-gateway"),
        ("operator pod deleted", NAMESPACE, f"{RELEASE}-operator"),
    ):
        outcome = traffic_during(
            release.mcp_url,
            release.token("faults"),
            f"fault-{deployment}",
            what,
            _delete_pod(release, namespace, deployment),
        )
        _read_back(release, outcome)
        outcomes.append(outcome)
    _show("fault table (each row: one pod deleted while a paced client saves)", outcomes)
    for outcome in outcomes:
        assert outcome.during > 0, f"no call overlapped {outcome.what}"
        assert outcome.lost == 0, outcome.what


def _roll_to(release: Release, *helm_args: str, tag: str) -> Callable[[], None]:
    """A helm change (upgrade or rollback), then each Deployment it rolls on ``tag``, rolled out."""

    def change() -> None:
        release.helm.run(*helm_args, "-n", NAMESPACE, "--wait", "--timeout", "5m", timeout=360)
        kube, cluster = release.cluster.kube, release.cluster

        def worker_on_tag() -> bool:
            worker = kube.get("apps/v1", "Deployment", f"tenant-{TENANT}-worker", TENANTS) or {}
            containers = worker["spec"]["template"]["spec"]["containers"]
            return all(c["image"].endswith(f":{tag}") for c in containers)

        cluster.wait_for(worker_on_tag, 180, f"the operator moves the workers to {tag}")
        for namespace, name in (
            (NAMESPACE, f"{RELEASE}-gateway"),
            (NAMESPACE, f"{RELEASE}-operator"),
            (TENANTS, f"tenant-{TENANT}-worker"),
        ):
            cluster.wait_for_rollout(namespace, name, 300)

    return change


def test_helm_upgrade_to_a_new_tag_and_rollback_under_traffic(release: Release) -> None:
    new_tag = f"{release.stowage.tag}-e2e.2"
    push_image(release.stowage, release.registry, STOWAGE_REPOSITORY, new_tag)
    upgrade = _roll_to(
        release, "upgrade", RELEASE, release.chart.url, "--version", release.chart.version,
        "--plain-http", "-f", str(release.values_file), "--set", f"image.tag={new_tag}",
        tag=new_tag,
    )  # fmt: skip
    rollback = _roll_to(release, "rollback", RELEASE, "1", tag=release.stowage.tag)
    outcomes = []
    for what, change in ((f"helm upgrade to :{new_tag}", upgrade), ("helm rollback", rollback)):
        outcome = traffic_during(
            release.mcp_url, release.token("upgrades"), f"roll-{len(outcomes)}", what, change
        )
        _read_back(release, outcome)
        outcomes.append(outcome)
    _show("upgrade/rollback table (calls while the release rolls)", outcomes)
    gateway = release.cluster.kube.get("apps/v1", "Deployment", f"{RELEASE}-gateway", NAMESPACE)
    assert gateway is not None
    assert gateway["spec"]["template"]["spec"]["containers"][0]["image"].endswith(
        f":{release.stowage.tag}"
    )
    for outcome in outcomes:
        assert outcome.during > 0, f"no call overlapped {outcome.what}"
        assert outcome.lost == 0, outcome.what
        # The gateway pods leave the Service before they stop (gateway.preStopSleepSeconds):
        # no connection is refused while they roll.
        assert outcome.refused_at_the_door == [], outcome.what
        # Nor do the worker's (the operator's preStop sleep): no call fails at all.
        assert outcome.failed == 0, (outcome.what, outcome.failures[:5])


def _run_from_cron_job(release: Release, cron_job: str) -> dict[str, Any]:
    """Run the CronJob's Job now, as ``kubectl create job --from=cronjob/…``; the finished Job."""
    kube, cluster = release.cluster.kube, release.cluster
    cron = kube.get("batch/v1", "CronJob", cron_job, TENANTS)
    assert cron is not None, f"the operator made no CronJob {cron_job}"
    template = cron["spec"]["jobTemplate"]
    name = f"{cron_job}-e2e"
    kube.apply(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": name,
                "namespace": TENANTS,
                "labels": template["metadata"]["labels"],
                "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "CronJob",
                        "name": cron_job,
                        "uid": cron["metadata"]["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": template["spec"],
        }
    )

    def finished() -> dict[str, Any] | None:
        job = kube.get("batch/v1", "Job", name, TENANTS) or {}
        kinds = {
            c["type"]
            for c in (job.get("status") or {}).get("conditions") or []
            if c["status"] == "True"
        }
        return job if kinds & {"Complete", "Failed"} else None

    cluster.wait_for(finished, 240, f"Job {name} finished")
    job = finished()
    assert job is not None
    pods = [
        p
        for p in kube.list("v1", "Pod", TENANTS)
        if p["metadata"].get("labels", {}).get("job-name") == name
    ]
    for pod in pods:
        pod_name = pod["metadata"]["name"]
        print(f"\n$ kubectl logs {pod_name}\n{cluster.pod_logs(TENANTS, pod_name)}")
    return job


def test_the_backup_cron_jobs_job_runs_once_and_the_restore_drill_passes(
    release: Release,
) -> None:
    backup = _run_from_cron_job(release, f"tenant-{TENANT}-backup")
    assert backup["status"].get("succeeded") == 1, backup["status"]
    assert any((release.backups / TENANT).iterdir()), "the backup wrote nothing to the volume"
    drill = _run_from_cron_job(release, f"tenant-{TENANT}-drill")
    assert drill["status"].get("succeeded") == 1, drill["status"]

    def drilled() -> dict[str, Any] | None:
        tenant = release.cluster.kube.get("stowage.dev/v1alpha1", "Tenant", TENANT, TENANTS)
        status = ((tenant or {}).get("status") or {}).get("backup") or {}
        return (
            status
            if (status.get("lastDrill") or {}).get("job") == drill["metadata"]["name"]
            else None
        )

    release.cluster.wait_for(drilled, 120, "the Tenant's status reports the drill")
    status = drilled()
    assert status is not None
    print(f"\nTenant status.backup: {json.dumps(status, indent=2)}")
    assert status["lastDrill"]["result"] == "Succeeded", status
    assert status.get("lastBackup"), status


def _pod_ip(release: Release, namespace: str, prefix: str) -> str:
    pod = release.cluster.kube.get("v1", "Pod", _pod_of(release, namespace, prefix), namespace)
    assert pod is not None
    return str(pod["status"]["podIP"])


def test_the_release_policies_admit_the_scrapers_and_refuse_other_pods(release: Release) -> None:
    cluster = release.cluster
    worker = _pod_ip(release, TENANTS, f"tenant-{TENANT}-worker-")
    operator = _pod_ip(release, NAMESPACE, f"{RELEASE}-operator-")
    gateway = _pod_ip(release, NAMESPACE, f"{RELEASE}-gateway-")
    redis = _pod_ip(release, NAMESPACE, f"{RELEASE}-redis-")
    scrapes = {
        "worker": f"http://{worker}:9100/metrics",
        "operator": f"http://{operator}:9090/metrics",
        "gateway": f"http://{gateway}:8000/metrics",
    }
    # Prometheus, where the values say it runs (networkPolicy.prometheus): every scrape in.
    cluster.create_namespace("monitoring")
    prometheus = {"app.kubernetes.io/name": "prometheus"}
    for what, url in scrapes.items():
        # A new pod's address reaches the policy's rules a moment after it starts.
        outcome = cluster.run_pod("monitoring", f"scrape-{what}", ["get", url, "20"], prometheus)
        assert outcome.succeeded, (what, outcome.logs)
        assert "# TYPE" in outcome.logs, (what, outcome.logs[:300])
    # Any other pod: no metrics of the operator or the workers, no worker gRPC, no Redis.
    cluster.create_namespace("intruder")
    refused = {
        "worker-metrics": scrapes["worker"],
        "operator-metrics": scrapes["operator"],
        "worker-grpc": f"http://{worker}:50051/",
        "redis": f"http://{redis}:6379/",
    }
    for what, url in refused.items():
        outcome = cluster.run_pod("intruder", f"try-{what}", ["get", url])
        print(f"\nintruder → {what}: {outcome.logs.strip()}")
        assert not outcome.succeeded, (what, outcome.logs)
        # Refused by the policy: the connection never opens (an open one fails otherwise:
        # gRPC and Redis answer an HTTP request with a protocol error or a close).
        assert "Timeout" in outcome.logs or "refused" in outcome.logs, (what, outcome.logs)
    # The gateway is the entry point: any pod reaches its HTTP port (gatewayFrom is empty).
    entry = cluster.run_pod("intruder", "entry", ["get", f"http://{gateway}:8000/healthz", "20"])
    assert entry.succeeded, entry.logs


#: A Tenant whose worker cannot fit its memory limit: the kernel kills it as it starts.
HUNGRY = "hungry"


def _worker_exits(release: Release, tenant: str) -> list[dict[str, Any]]:
    """The container statuses of ``tenant``'s worker pods, as the kubelet reports them."""
    pods = release.cluster.kube.list("v1", "Pod", TENANTS)
    return [
        status
        for pod in pods
        if pod["metadata"]["name"].startswith(f"tenant-{tenant}-worker-")
        for status in (pod.get("status") or {}).get("containerStatuses") or []
    ]


def _oom_restarts(release: Release) -> int:
    """Restarts of the hungry worker's containers, once one last ended OOMKilled; else 0."""
    exits = _worker_exits(release, HUNGRY)
    killed = [s for s in exits if (s.get("lastState") or {}).get("terminated", {}).get("reason")
              == "OOMKilled"]  # fmt: skip
    return sum(int(s.get("restartCount", 0)) for s in exits) if killed else 0


def _operator_samples(release: Release, attempt: Iterator[int]) -> dict[str, float]:
    """The operator's stowage_tenant_worker_* samples of the hungry Tenant, scraped the way
    Prometheus scrapes them (a pod the release's policy admits), by name and reason."""
    operator = _pod_ip(release, NAMESPACE, f"{RELEASE}-operator-")
    outcome = release.cluster.run_pod(
        "monitoring",
        f"scrape-oom-{next(attempt)}",
        ["get", f"http://{operator}:9090/metrics", "20"],
        {"app.kubernetes.io/name": "prometheus"},
    )
    assert outcome.succeeded, outcome.logs
    text = outcome.logs[outcome.logs.index("# HELP") :]
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith("stowage_tenant_worker_") and s.labels.get("tenant") == HUNGRY:
                assert s.labels["namespace"] == TENANTS, s
                found[s.name + s.labels.get("reason", "")] = s.value
    return found


def _alert_fires_on(restarts: tuple[float, float], killed: float) -> str:
    """Run the chart's StowageTenantWorkerOOMKilled over two scrapes of these values a minute
    apart (promtool's rule unit test); return promtool's output, failing if it did not fire."""
    [rule] = [r for r in alerts() if r["alert"] == "StowageTenantWorkerOOMKilled"]

    def rendered(text: str) -> str:
        return text.replace("{{ $labels.namespace }}", TENANTS).replace(
            "{{ $labels.tenant }}", HUNGRY
        )

    labels = f'namespace="{TENANTS}",tenant="{HUNGRY}"'
    case = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {
                        "series": f"stowage_tenant_worker_restarts{{{labels}}}",
                        "values": f"{restarts[0]:g} {restarts[1]:g}x10",
                    },
                    {
                        "series": "stowage_tenant_worker_last_terminated"
                        f'{{{labels},reason="OOMKilled"}}',
                        "values": f"{killed:g}x11",
                    },
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "2m",
                        "alertname": "StowageTenantWorkerOOMKilled",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": rule["labels"]["severity"],
                                    "namespace": TENANTS,
                                    "tenant": HUNGRY,
                                },
                                "exp_annotations": {
                                    k: rendered(v) for k, v in rule["annotations"].items()
                                },
                            }
                        ],
                    }
                ],
            }
        ],
    }
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "oom_test.yaml"
        path.write_text(yaml.safe_dump(case))
        done = subprocess.run(
            [str(promtool()), "test", "rules", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_worker_killed_for_memory_shows_in_the_operators_metrics_and_fires_the_alert(
    release: Release,
) -> None:
    kube = release.cluster.kube
    release.cluster.create_namespace("monitoring")
    resources = {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "32Mi"}}
    kube.apply(tenant_doc(HUNGRY, TENANTS, REGION, worker={"replicas": 1, "resources": resources}))
    attempt = iter(range(1000))
    try:
        # The kernel kills the worker as it loads; the kubelet restarts it, and reports why.
        release.cluster.wait_for(lambda: _oom_restarts(release) >= 1, 240, "an OOM kill")
        first: dict[str, float] = {}
        release.cluster.wait_for(
            lambda: first.update(_operator_samples(release, attempt)) or first, 120,
            "the operator reporting the hungry worker",
        )  # fmt: skip
        # The next kill, a scrape later (the kubelet's back-off: 10 s, then 20 s, …).
        second: dict[str, float] = {}
        release.cluster.wait_for(
            lambda: second.update(_operator_samples(release, attempt)) or (
                second["stowage_tenant_worker_restarts"]
                > first["stowage_tenant_worker_restarts"]
            ),
            240,
            "a further restart in the operator's metrics",
        )  # fmt: skip
        print(f"\nhungry worker: {_worker_exits(release, HUNGRY)}")
        print(f"operator's samples: first scrape {first}, later scrape {second}")
        killed = second["stowage_tenant_worker_last_terminatedOOMKilled"]
        assert killed >= 1
        restarts = (
            first["stowage_tenant_worker_restarts"],
            second["stowage_tenant_worker_restarts"],
        )
        print(_alert_fires_on(restarts, killed))
    finally:
        kube.delete(API, "Tenant", HUNGRY, TENANTS)
        release.cluster.wait_for(
            lambda: kube.get(API, "Tenant", HUNGRY, TENANTS) is None, 120, "hungry deleted"
        )
