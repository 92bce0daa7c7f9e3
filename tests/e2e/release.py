"""The chart installed for real: ``helm install oci://…`` on the e2e cluster, from a registry.

:func:`installed_release` starts what a platform team would already have: a
PostgreSQL server, a tenant's OAuth issuer and an OCI registry, all on the
machine's end of the node's link (``cluster.host_ip``), the only address pods
reach outside the node. It pushes this tree's image, the chart's Redis image and
the chart to the registry, installs the chart from it with NetworkPolicies and
monitoring on, declares a Region and a Tenant, and waits until the operator, the
gateway, Redis and the Tenant's workers are Ready. The Region backs its tenants
up to a claim on a hostPath volume of the node. Everything stops with the
context.

The gateway speaks plain HTTP (it has no TLS of its own: TLS ends in front of it,
at an Ingress or load balancer). The chart admits an ``http://`` public URL only
on loopback, so the release's public URL is ``https://mcp.stowage.test``: the
tokens' audience, what a load balancer would serve. Tests reach the gateway
where that load balancer would, at its NodePort on the node's address, which
``gateway.allowedHosts`` admits; ``helm test`` reaches it through its Service.
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from stowage_testing.cluster import Cluster
from stowage_testing.images import BuiltImage, PushedChart, built_image, push_chart, push_image
from stowage_testing.issuer import Issuer, running_issuer
from stowage_testing.kube import find_kube_tool
from stowage_testing.operator import condition, tenant_doc
from stowage_testing.postgres import PostgresServer, running_own_postgres
from stowage_testing.registry import Registry, running_registry
from stowage_testing.tls import Authority
from tests.chart.support import MONITORING_CRDS, Helm, prometheus_operator_crds_dir

RELEASE = "stowage"
NAMESPACE = "stowage-system"
TENANTS = "stowage-tenants"
TENANT = "acme"
REGION = "local"
PUBLIC_URL = "https://mcp.stowage.test"
AUDIENCE = f"{PUBLIC_URL}/t/{TENANT}/mcp"
#: The in-cluster address ``helm test`` reaches the gateway at.
SERVICE_HOST = f"{RELEASE}-gateway.{NAMESPACE}.svc"
DOGFOOD_SECRET = "dogfood-token"
#: The ConfigMap with the issuer's CA, which the gateway trusts (gateway.issuerCA).
ISSUER_CA = "issuer-ca"
#: The Region's backup volume: a PersistentVolumeClaim in the Tenants' namespace.
BACKUP_CLAIM = "backups"
#: The uid the project's image runs as (its Dockerfile's USER), which writes the backups.
IMAGE_UID = 10001
REDIS_REPOSITORY = "library/redis"
STOWAGE_REPOSITORY = "stowage/stowage"
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}


@dataclass
class Release:
    """The installed release and the servers around it."""

    cluster: Cluster
    helm: Helm
    registry: Registry
    chart: PushedChart
    postgres: PostgresServer
    issuer: Issuer
    stowage: BuiltImage
    node_port: int
    values_file: Path
    workdir: Path
    #: The backup volume's directory on the node (a hostPath PersistentVolume).
    backups: Path

    @property
    def mcp_url(self) -> str:
        """The tenant's MCP endpoint as the machine reaches it: the gateway's NodePort."""
        return f"http://{self.cluster.node_ip}:{self.node_port}/t/{TENANT}/mcp"

    def token(self, subject: str) -> str:
        return self.issuer.token(AUDIENCE, subject=subject)

    def helm_chart(self, *args: str, timeout: float = 600.0) -> subprocess.CompletedProcess[str]:
        """``helm ARGS oci://…/stowage --version V --plain-http`` (install, upgrade)."""
        return self.helm.run(
            *args, self.chart.url, "--version", self.chart.version, "--plain-http",
            "-n", NAMESPACE, timeout=timeout,
        )  # fmt: skip

    def wait_ready(self, timeout: float = 300.0) -> None:
        """Until the operator, the gateway, Redis and the Tenant's workers are Ready."""
        for name in ("operator", "gateway", "redis"):
            self.cluster.wait_for_rollout(NAMESPACE, f"{RELEASE}-{name}", timeout)
        self.cluster.wait_for(
            lambda: (
                condition(
                    self.cluster.kube.get("stowage.dev/v1alpha1", "Tenant", TENANT, TENANTS),
                    "Ready",
                ).get("status")
                == "True"
            ),
            timeout,
            f"Tenant {TENANTS}/{TENANT} Ready",
        )
        self.cluster.wait_for_rollout(TENANTS, f"tenant-{TENANT}-worker", timeout)
        self.cluster.wait_for_service(NAMESPACE, f"{RELEASE}-gateway", timeout)
        self.cluster.wait_for_service(TENANTS, f"tenant-{TENANT}-worker", timeout)


def values(
    cluster: Cluster,
    registry: Registry,
    postgres: PostgresServer,
    issuer: Issuer,
    node_port: int,
    tag: str,
    redis: BuiltImage,
) -> dict[str, Any]:
    """The release's values: images from the registry, the NodePort, policies and monitors on."""
    host = [{"ipBlock": {"cidr": f"{cluster.host_ip}/32"}}]
    api_port = urllib.parse.urlsplit(cluster.kube.server).port or 443
    issuer_port = urllib.parse.urlsplit(issuer.url).port or 443
    return {
        "image": {"repository": f"{registry.address}/{STOWAGE_REPOSITORY}", "tag": tag},
        "operator": {"resyncSeconds": 30},
        "gateway": {
            "replicas": 2,
            "publicUrl": PUBLIC_URL,
            "allowedHosts": [
                "mcp.stowage.test",
                f"{cluster.node_ip}:{node_port}",
                SERVICE_HOST,
            ],
            "service": {"type": "NodePort", "nodePort": node_port},
            "issuerCA": {"configMapName": ISSUER_CA},
        },
        "redis": {
            "image": {
                "repository": f"{registry.address}/{REDIS_REPOSITORY}",
                "tag": redis.tag,
            }
        },
        "networkPolicy": {
            "enabled": True,
            "apiServer": {"to": host, "ports": [api_port]},
            "postgres": {"to": host, "ports": [postgres.port]},
            "issuers": {"to": host, "ports": [issuer_port]},
            "dns": {
                "to": [
                    {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                        },
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                    }
                ]
            },
        },
        "monitoring": {
            "gateway": {"enabled": True},
            "operator": {"enabled": True},
            "workers": {"enabled": True},
            "prometheusRule": {"enabled": True},
            "dashboards": {"enabled": True},
        },
        "tests": {
            "dogfood": {
                "tenant": TENANT,
                "tokenSecret": DOGFOOD_SECRET,
                "gatewayUrl": f"http://{SERVICE_HOST}",
                "maxObjectBytes": "64Ki",
                "timeout": 120,
            }
        },
    }


def _serving_files(authority: Authority, address: str, directory: Path) -> tuple[Path, Path]:
    """A certificate for the IP ``address`` signed by ``authority``, and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, address)]))
        .issuer_name(authority.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
            critical=False,
        )
        .sign(authority.key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = directory / "tls.crt", directory / "tls.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def _free_node_port(cluster: Cluster) -> int:
    taken = {
        port.get("nodePort")
        for service in cluster.kube.list("v1", "Service")
        for port in (service.get("spec") or {}).get("ports") or []
    }
    return next(p for p in range(30080, 32767) if p not in taken)


def _backup_volume(cluster: Cluster) -> Path:
    """A hostPath PersistentVolume on the node, claimed in the Tenants' namespace.

    The node has no storage provisioner; a platform team's Region names a claim on
    real storage the same way. The tenant's directory is made for the image's user
    (a hostPath volume does not take the pod's fsGroup).
    """
    directory = cluster.workdir / "backups"
    (directory / TENANT).mkdir(parents=True, exist_ok=True)
    shutil.chown(directory / TENANT, IMAGE_UID, IMAGE_UID)
    cluster.kube.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": f"{TENANTS}-{BACKUP_CLAIM}"},
                "spec": {
                    "capacity": {"storage": "1Gi"},
                    "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": "",
                    "hostPath": {"path": str(directory), "type": "Directory"},
                    "claimRef": {"namespace": TENANTS, "name": BACKUP_CLAIM},
                },
            },
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": BACKUP_CLAIM, "namespace": TENANTS},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "",
                    "volumeName": f"{TENANTS}-{BACKUP_CLAIM}",
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
        ]
    )
    return directory


def _region(cluster: Cluster, postgres: PostgresServer) -> None:
    cluster.kube.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": f"pg-{REGION}-admin", "namespace": NAMESPACE},
                "stringData": {"username": postgres.user, "password": postgres.password},
            },
            {
                "apiVersion": "stowage.dev/v1alpha1",
                "kind": "Region",
                "metadata": {"name": REGION},
                "spec": {
                    "postgres": {
                        "host": postgres.host,
                        "port": postgres.port,
                        "sslMode": "disable",
                        "adminSecretRef": {"name": f"pg-{REGION}-admin", "namespace": NAMESPACE},
                    },
                    "backup": {"persistentVolumeClaim": {"claimName": BACKUP_CLAIM}},
                },
            },
        ]
    )


# Over 60 lines on purpose: the whole bring-up of the release, in the order it runs.
@contextmanager
def installed_release(cluster: Cluster, workdir: Path) -> Iterator[Release]:
    """Servers on ``cluster.host_ip``, images and chart in a registry, the chart installed."""
    with ExitStack() as stack:
        started = time.monotonic()
        postgres = stack.enter_context(running_own_postgres(host=cluster.host_ip))
        # The Tenant's issuer must be https:// (the CRD admits http:// on localhost only),
        # behind a CA of its own that the gateway is told to trust.
        authority = Authority.make("stowage-e2e-issuer")
        serving = _serving_files(authority, cluster.host_ip, workdir / "issuer-tls")
        issuer = stack.enter_context(running_issuer(workdir, host=cluster.host_ip, tls=serving))
        registry = stack.enter_context(running_registry(workdir / "registry", host=cluster.host_ip))
        cluster.trust_registry(registry.address)
        stowage, redis = built_image("stowage"), built_image("redis")
        push_image(stowage, registry, STOWAGE_REPOSITORY, stowage.tag)
        push_image(redis, registry, REDIS_REPOSITORY, redis.tag)
        helm = Helm(find_kube_tool("helm"), workdir / "helm-home").for_cluster(cluster.kubeconfig)
        chart = push_chart(helm.binary, helm.home, registry, workdir / "chart")

        crds = prometheus_operator_crds_dir()
        for kind in MONITORING_CRDS:
            cluster.kube.apply((crds / f"monitoring.coreos.com_{kind}.yaml").read_text())
        cluster.create_namespace(NAMESPACE, RESTRICTED)
        cluster.create_namespace(TENANTS, RESTRICTED)
        cluster.kube.apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": ISSUER_CA, "namespace": NAMESPACE},
                "data": {"ca.crt": authority.pem},
            }
        )
        node_port = _free_node_port(cluster)
        backups = _backup_volume(cluster)
        values_file = workdir / "values.yaml"
        values_file.write_text(
            yaml.safe_dump(
                values(cluster, registry, postgres, issuer, node_port, stowage.tag, redis)
            )
        )
        release = Release(
            cluster, helm, registry, chart, postgres, issuer, stowage, node_port, values_file,
            workdir, backups,
        )  # fmt: skip
        release.helm_chart("install", RELEASE, "-f", str(values_file))
        stack.callback(_uninstall, release)
        _region(cluster, postgres)
        cluster.kube.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": DOGFOOD_SECRET, "namespace": NAMESPACE},
                "stringData": {"token": release.token("dogfood")},
            }
        )
        cluster.kube.apply(
            tenant_doc(
                TENANT,
                TENANTS,
                REGION,
                auth={"issuer": issuer.url, "audience": AUDIENCE},
                rateLimits={
                    "perUser": {"requestsPerMinute": 6000, "burst": 600},
                    "perTenant": {"requestsPerMinute": 60000, "burst": 6000},
                },
            )
        )
        release.wait_ready()
        print(f"\nrelease installed and Ready in {time.monotonic() - started:.0f}s")
        yield release


def _uninstall(release: Release) -> None:
    """The Tenant (its workers, while the operator still runs), then the release."""
    kube = release.cluster.kube
    kube.delete("stowage.dev/v1alpha1", "Tenant", TENANT, TENANTS)
    try:
        release.cluster.wait_for(
            lambda: kube.get("stowage.dev/v1alpha1", "Tenant", TENANT, TENANTS) is None,
            60,
            "the Tenant deleted",
        )
    finally:
        release.helm.run("uninstall", RELEASE, "-n", NAMESPACE, "--wait", timeout=180)
