"""The test cluster itself: a node that runs pods, Services by address and by name,
NetworkPolicies enforced on live traffic, and a teardown that leaves nothing."""

from __future__ import annotations

import ipaddress
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stowage_testing.cluster import (
    CLUSTER_DOMAIN,
    POD_RANGE,
    PROBE_IMAGE,
    RESTRICTED_CONTAINER,
    RESTRICTED_POD,
    Cluster,
    running_cluster,
)

PORT = 8080


def _web(namespace: str, replicas: int = 2) -> list[dict[str, Any]]:
    """A Deployment of probe HTTP servers answering with their pod's name, and its Service."""
    labels = {"app": "web"}
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "terminationGracePeriodSeconds": 1,
                        "automountServiceAccountToken": False,
                        "securityContext": RESTRICTED_POD,
                        "containers": [
                            {
                                "name": "web",
                                "image": PROBE_IMAGE,
                                "imagePullPolicy": "Never",
                                "args": ["serve", str(PORT)],
                                "ports": [{"containerPort": PORT}],
                                "readinessProbe": {
                                    "httpGet": {"path": "/", "port": PORT},
                                    "periodSeconds": 1,
                                },
                                "securityContext": RESTRICTED_CONTAINER,
                            }
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {
                "type": "NodePort",
                "selector": labels,
                "ports": [{"port": 80, "targetPort": PORT}],
            },
        },
    ]


def _web_pods(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    return [
        pod
        for pod in cluster.kube.list("v1", "Pod", namespace)
        if pod["metadata"].get("labels", {}).get("app") == "web"
    ]


@pytest.fixture(scope="module")
def web(cluster: Cluster) -> Iterator[str]:
    """A namespace running the web Deployment and Service; its name."""
    cluster.create_namespace("web")
    cluster.kube.apply(_web("web"))
    cluster.wait_for_rollout("web", "web")
    cluster.wait_for_service("web", "web")
    yield "web"
    cluster.kube.delete("v1", "Namespace", "web")


def test_node_is_ready_with_the_pinned_kubelet_and_containerd(
    cluster: Cluster, sandbox_image: tuple[Path, str]
) -> None:
    node = cluster.kube.get("v1", "Node", cluster.node_name)
    assert node is not None
    conditions = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert conditions["Ready"] == "True"
    info = node["status"]["nodeInfo"]
    assert info["kubeletVersion"] == "v1.34.4"
    assert info["containerRuntimeVersion"].startswith("containerd://")
    addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
    assert addresses["InternalIP"] == cluster.node_ip
    containers = cluster.ctr("containers", "list")
    assert sandbox_image[1] in containers  # CoreDNS's pod sandbox, imported, never pulled
    pod_cidr = ipaddress.IPv4Network(node["spec"]["podCIDR"])
    assert pod_cidr.subnet_of(ipaddress.IPv4Network(POD_RANGE))


def test_deployment_pods_run_on_the_node_with_pod_addresses(cluster: Cluster, web: str) -> None:
    pods = _web_pods(cluster, web)
    assert len(pods) == 2
    for pod in pods:
        assert pod["status"]["phase"] == "Running"
        assert pod["spec"]["nodeName"] == cluster.node_name
        assert ipaddress.ip_address(pod["status"]["podIP"]) in ipaddress.ip_network(POD_RANGE)


def test_service_answers_by_cluster_ip_from_another_pod(cluster: Cluster, web: str) -> None:
    service = cluster.kube.get("v1", "Service", "web", web)
    assert service is not None
    names = {pod["metadata"]["name"] for pod in _web_pods(cluster, web)}

    outcome = cluster.run_pod(web, "by-ip", ["get", f"http://{service['spec']['clusterIP']}/"])

    assert outcome.succeeded, outcome.logs
    assert outcome.logs.strip() in names


def test_service_answers_by_dns_name_from_another_pod(cluster: Cluster, web: str) -> None:
    names = {pod["metadata"]["name"] for pod in _web_pods(cluster, web)}

    short = cluster.run_pod(web, "by-name", ["get", "http://web/"])
    full = cluster.run_pod(web, "by-fqdn", ["get", f"http://web.{web}.svc.{CLUSTER_DOMAIN}/"])

    assert short.succeeded, short.logs
    assert short.logs.strip() in names
    assert full.succeeded, full.logs
    assert full.logs.strip() in names


def test_node_port_answers_from_the_machine(cluster: Cluster, web: str) -> None:
    service = cluster.kube.get("v1", "Service", "web", web)
    assert service is not None
    node_port = service["spec"]["ports"][0]["nodePort"]
    names = {pod["metadata"]["name"] for pod in _web_pods(cluster, web)}

    response = httpx.get(f"http://{cluster.node_ip}:{node_port}/", timeout=10)

    assert response.status_code == 200
    assert response.text.strip() in names


def test_the_node_and_its_pods_have_no_route_beyond_the_node_link(cluster: Cluster) -> None:
    uplink = subprocess.run(
        ["ip", "-4", "route", "get", "1.1.1.1"], check=True, capture_output=True, text=True
    ).stdout.split()
    machine = uplink[uplink.index("src") + 1]  # this machine's address on its uplink

    routes = cluster.node_run(["ip", "-4", "route", "show"]).stdout
    outcome = cluster.run_pod("default", "outward", ["get", f"http://{machine}/"])

    assert "default" not in routes
    assert not outcome.succeeded
    assert "network is unreachable" in outcome.logs


def test_network_policy_refuses_other_pods_and_admits_the_allowed_ones(cluster: Cluster) -> None:
    namespace = "policy"
    cluster.create_namespace(namespace)
    cluster.kube.apply(_web(namespace, replicas=1))
    cluster.wait_for_rollout(namespace, "web")
    cluster.wait_for_service(namespace, "web")
    url = f"http://web.{namespace}/"
    before = cluster.run_pod(namespace, "before", ["get", url], labels={"role": "other"})
    assert before.succeeded, before.logs  # reachable until a policy says otherwise

    cluster.kube.apply(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "web-from-allowed", "namespace": namespace},
            "spec": {
                "podSelector": {"matchLabels": {"app": "web"}},
                "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "allowed"}}}]}],
            },
        }
    )
    attempts = iter(range(1000))

    def refused() -> bool:
        name = f"denied-{next(attempts)}"
        return not cluster.run_pod(
            namespace, name, ["get", url], labels={"role": "other"}
        ).succeeded

    cluster.wait_for(refused, what="the policy refuses a pod it does not admit")
    # A new pod's address reaches the policy's rules a moment after the pod starts: the
    # allowed client tries again for a while, as any client of a fresh pod must.
    allowed = cluster.run_pod(namespace, "allowed", ["get", url, "20"], labels={"role": "allowed"})
    denied = cluster.run_pod(namespace, "denied", ["get", url], labels={"role": "other"})

    assert allowed.succeeded, allowed.logs
    answer = allowed.logs.splitlines()[-1]  # after any refused tries (on stderr)
    assert answer == _web_pods(cluster, namespace)[0]["metadata"]["name"]
    assert not denied.succeeded
    assert "get:" in denied.logs  # the probe's own failure, not a pod that never ran


def _mounts_under(path: Path) -> list[str]:
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return [line for line in lines if str(path) in line]


def _running(pid: int) -> tuple[str, str] | None:
    """Process ``pid``'s start time and command line, or None when it is gone or a zombie
    (the start time tells a reused pid from the old process)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return None
    return None if fields[0] == "Z" else (fields[19], command)


def test_teardown_leaves_no_process_mount_cgroup_link_or_file(
    sandbox_image: tuple[Path, str],
) -> None:
    with running_cluster(sandbox=sandbox_image) as cluster:
        cluster.create_namespace("web")
        cluster.kube.apply(_web("web", replicas=1))
        cluster.wait_for_rollout("web", "web")
        # A process that ended between the listing and the read (a probe, a short-lived
        # helper) has nothing left to outlive the cluster.
        processes = {pid: seen for pid in cluster.processes() if (seen := _running(pid))}
        workdir, cgroup_root, link = cluster.workdir, cluster.cgroup_root, cluster.host_link
        # The holder, containerd, its shims, the kubelet and the rest, the pods' own.
        assert len(processes) > 8
        assert list(Path("/sys/fs/cgroup").glob(f"*/{cgroup_root.lstrip('/')}"))
        assert link in os.listdir("/sys/class/net")

    assert [seen for pid, seen in processes.items() if _running(pid) == seen] == []
    assert not workdir.exists()
    assert _mounts_under(workdir) == []
    assert not list(Path("/sys/fs/cgroup").glob(f"*/{cgroup_root.lstrip('/')}"))
    assert link not in os.listdir("/sys/class/net")
