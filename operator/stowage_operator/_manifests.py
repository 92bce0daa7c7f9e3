"""The Kubernetes objects a Tenant's worker needs, as plain dictionaries. No I/O here.

Every object carries the tenant's labels and an owner reference to the Tenant
(so a cluster's garbage collector would remove it too), but the operator does
not rely on that: it deletes what it owns itself.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

import yaml

from stowage.crd import API_VERSION, TENANT_KIND
from stowage_operator import _naming
from stowage_operator._settings import OperatorSettings
from stowage_operator._spec import parsed, policy_document
from stowage_operator._types import (
    Body,
    DatabaseCredentials,
    ObjectStoreCredentials,
    Region,
    TenantRef,
)

#: libyaml's safe dumper when PyYAML has it (the same text, a quarter of the CPU: every
#: resync pass renders every Tenant's policy to compare it), else PyYAML's own.
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

DEFAULT_RESOURCES: dict[str, dict[str, str]] = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"memory": "512Mi"},
}


def _meta(tenant: TenantRef, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": tenant.namespace,
        "labels": _naming.labels(tenant.name),
        "ownerReferences": [
            {
                "apiVersion": API_VERSION,
                "kind": TENANT_KIND,
                "name": tenant.name,
                "uid": tenant.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }


def secret(tenant: TenantRef, creds: DatabaseCredentials) -> Body:
    """The worker's database credentials: the only place the password lives.

    With a Region CA, the Secret holds it too (``ca.crt``) and the URL names it
    where worker and backup pods mount it (:func:`mount_region_ca`).
    """
    values = {
        "host": creds.host,
        "port": str(creds.port),
        "database": creds.database,
        "username": creds.user,
        "password": creds.password,
        "sslmode": creds.ssl_mode,
        "url": creds.url(_naming.POSTGRES_CA_FILE if creds.ca_cert else ""),
    }
    if creds.ca_cert:
        values[_naming.POSTGRES_CA_KEY] = creds.ca_cert
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(tenant, _naming.secret_name(tenant.name)),
        "type": "Opaque",
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in values.items()},
    }


def mount_region_ca(pod_spec: dict[str, Any], tenant: TenantRef, region: Region) -> None:
    """Mount the Region's CA from the tenant's Secret where its URL's sslrootcert points."""
    if not region.ca_secret_name:
        return
    pod_spec.setdefault("volumes", []).append(
        {
            "name": "postgres-ca",
            "secret": {
                "secretName": _naming.secret_name(tenant.name),
                "items": [{"key": _naming.POSTGRES_CA_KEY, "path": _naming.POSTGRES_CA_KEY}],
            },
        }
    )
    for c in pod_spec["containers"]:
        c.setdefault("volumeMounts", []).append(
            {"name": "postgres-ca", "mountPath": _naming.POSTGRES_CA_DIR, "readOnly": True}
        )


def object_store_secret(tenant: TenantRef, creds: ObjectStoreCredentials) -> Body:
    """The Region's object-store credentials (and CA) in the tenant's namespace, where its
    worker's pod can reference them: a pod reads Secrets of its own namespace only."""
    values = {
        _naming.OBJECT_STORE_ACCESS_KEY_ID: creds.access_key_id,
        _naming.OBJECT_STORE_SECRET_ACCESS_KEY: creds.secret_access_key,
    }
    if creds.ca_cert:
        values[_naming.OBJECT_STORE_CA_KEY] = creds.ca_cert
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(tenant, _naming.object_store_secret_name(tenant.name)),
        "type": "Opaque",
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in values.items()},
    }


def object_store_env(tenant: TenantRef, region: Region) -> list[dict[str, Any]]:
    """The worker's ``STOWAGE_OBJECT_STORE_*`` variables (none without ``spec.objectStore``);
    the credentials by reference to the tenant's object-store Secret, never as values."""
    store = region.object_store
    if store is None:
        return []
    secret = _naming.object_store_secret_name(tenant.name)
    values = {
        "STOWAGE_OBJECT_STORE_ENDPOINT": store.endpoint,
        "STOWAGE_OBJECT_STORE_BUCKET": store.bucket,
        "STOWAGE_OBJECT_STORE_REGION": store.region,
        "STOWAGE_OBJECT_STORE_PREFIX": store.tenant_prefix(tenant),
        "STOWAGE_OBJECT_STORE_PATH_STYLE": "true" if store.path_style else "false",
    }
    if store.sse:
        values["STOWAGE_OBJECT_STORE_SSE"] = store.sse
    if store.sse_kms_key_id:
        values["STOWAGE_OBJECT_STORE_SSE_KMS_KEY_ID"] = store.sse_kms_key_id
    if store.ca_secret_name:
        ca_file = f"{_naming.OBJECT_STORE_CA_DIR}/{_naming.OBJECT_STORE_CA_KEY}"
        values["STOWAGE_OBJECT_STORE_CA_FILE"] = ca_file
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in values.items()]
    for variable, key in (
        ("STOWAGE_OBJECT_STORE_ACCESS_KEY_ID", _naming.OBJECT_STORE_ACCESS_KEY_ID),
        ("STOWAGE_OBJECT_STORE_SECRET_ACCESS_KEY", _naming.OBJECT_STORE_SECRET_ACCESS_KEY),
    ):
        env.append({"name": variable, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
    return env


def mount_object_store_ca(pod_spec: dict[str, Any], tenant: TenantRef, region: Region) -> None:
    """Mount the object store's CA (``caSecretRef``) from the tenant's object-store Secret,
    where ``STOWAGE_OBJECT_STORE_CA_FILE`` names it."""
    if region.object_store is None or not region.object_store.ca_secret_name:
        return
    key = _naming.OBJECT_STORE_CA_KEY
    pod_spec.setdefault("volumes", []).append(
        {
            "name": "object-store-ca",
            "secret": {
                "secretName": _naming.object_store_secret_name(tenant.name),
                "items": [{"key": key, "path": key}],
            },
        }
    )
    for c in pod_spec["containers"]:
        c.setdefault("volumeMounts", []).append(
            {"name": "object-store-ca", "mountPath": _naming.OBJECT_STORE_CA_DIR, "readOnly": True}
        )


def config_map(tenant: TenantRef, spec: Mapping[str, Any]) -> Body:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(tenant, _naming.policy_name(tenant.name)),
        "data": {
            _naming.POLICY_KEY: yaml.dump(policy_document(spec), Dumper=_DUMPER, sort_keys=True),
        },
    }


def _resources(spec: Mapping[str, Any]) -> dict[str, Any]:
    worker = parsed(spec).worker
    return {
        "requests": dict(worker.requests or DEFAULT_RESOURCES["requests"]),
        "limits": dict(worker.limits or DEFAULT_RESOURCES["limits"]),
    }


def replicas(spec: Mapping[str, Any]) -> int:
    return parsed(spec).worker.replicas


def worker_image(spec: Mapping[str, Any], settings: OperatorSettings) -> str:
    """The Tenant's own worker image, else the operator's."""
    return parsed(spec).worker.image or settings.worker_image


def pod_security() -> dict[str, Any]:
    """The ``restricted`` Pod Security Standard, pod level: every pod the operator creates."""
    return {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security() -> dict[str, Any]:
    """The ``restricted`` Pod Security Standard, container level (root filesystem read-only)."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def place_in_region(pod_spec: dict[str, Any], region: Region) -> None:
    """Schedule a pod in the Region: its node selector, affinity and tolerations."""
    if region.node_selector:
        pod_spec["nodeSelector"] = dict(region.node_selector)
    if region.affinity:
        pod_spec["affinity"] = dict(region.affinity)
    if region.tolerations:
        pod_spec["tolerations"] = [dict(t) for t in region.tolerations]


def tracing_env(settings: OperatorSettings) -> list[dict[str, Any]]:
    """The operator's tracing variables, for a worker or backup container (none when off)."""
    return [{"name": name, "value": value} for name, value in sorted(settings.tracing.items())]


#: How long a stopping worker pod keeps serving before it gets SIGTERM: long enough for
#: kube-proxy on every node to stop sending it new connections.
PRE_STOP_SECONDS = 5
#: The preStop sleep, the worker's gRPC grace (``tenant_worker._server``, 5 s) and slack.
TERMINATION_GRACE_SECONDS = 30


def deployment(
    tenant: TenantRef,
    spec: Mapping[str, Any],
    region: Region,
    settings: OperatorSettings,
    object_store: ObjectStoreCredentials | None = None,
) -> Body:
    # Longer than a function should be, on purpose: one declarative object, the Deployment
    # as the API server stores it, reads best whole; its shared parts (pod security, region
    # placement) are already functions of their own.
    name = _naming.worker_name(tenant.name)
    image = worker_image(spec, settings)
    probe = {"grpc": {"port": _naming.WORKER_PORT}, "periodSeconds": 10, "timeoutSeconds": 2}
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security(),
        # The preStop sleep, then the worker's own drain (gRPC grace), then the kill.
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
        "containers": [
            {
                "name": "worker",
                "image": image,
                "args": ["worker", "serve"],
                "env": [
                    {"name": "STOWAGE_TENANT", "value": tenant.name},
                    {"name": "STOWAGE_WORKER_INSTANCE", "value": _naming.instance(tenant, region)},
                    {"name": "STOWAGE_WORKER_LISTEN", "value": f"0.0.0.0:{_naming.WORKER_PORT}"},
                    {"name": "STOWAGE_METRICS_PORT", "value": str(_naming.METRICS_PORT)},
                    {
                        "name": "STOWAGE_POLICY_FILE",
                        "value": f"{_naming.POLICY_DIR}/{_naming.POLICY_KEY}",
                    },
                    {
                        "name": "STOWAGE_DATABASE_URL",
                        "valueFrom": {
                            "secretKeyRef": {
                                "name": _naming.secret_name(tenant.name),
                                "key": "url",
                            }
                        },
                    },
                    *tracing_env(settings),
                    *object_store_env(tenant, region),
                ],
                "ports": [
                    {"name": "grpc", "containerPort": _naming.WORKER_PORT, "protocol": "TCP"},
                    {"name": "metrics", "containerPort": _naming.METRICS_PORT, "protocol": "TCP"},
                ],
                "readinessProbe": probe,
                "livenessProbe": {**probe, "initialDelaySeconds": 10, "failureThreshold": 6},
                # Keep serving while the pod's removal from the Service reaches kube-proxy:
                # only then does SIGTERM make the worker finish its calls and stop.
                "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRE_STOP_SECONDS)]}}},
                "resources": _resources(spec),
                "securityContext": container_security(),
                "volumeMounts": [
                    {"name": "policy", "mountPath": _naming.POLICY_DIR, "readOnly": True},
                    {"name": "tmp", "mountPath": "/tmp"},
                ],
            }
        ],
        "volumes": [
            {"name": "policy", "configMap": {"name": _naming.policy_name(tenant.name)}},
            {"name": "tmp", "emptyDir": {}},
        ],
    }
    place_in_region(pod_spec, region)
    mount_region_ca(pod_spec, tenant, region)
    annotations: dict[str, str] = {"stowage.dev/region": region.name}
    mount_object_store_ca(pod_spec, tenant, region)
    if region.object_store is not None and object_store is not None:
        # Variables from a Secret are read when a pod starts: a new key rolls the pods.
        annotations["stowage.dev/object-store-credentials"] = _fingerprint(object_store)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(tenant, name),
        "spec": {
            "replicas": replicas(spec),
            "selector": {"matchLabels": _naming.selector(tenant.name)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {
                    "labels": _naming.labels(tenant.name),
                    "annotations": annotations,
                },
                "spec": pod_spec,
            },
        },
    }


def _fingerprint(creds: ObjectStoreCredentials) -> str:
    """A short digest of the credentials, to notice they changed (never the values)."""
    text = "\n".join((creds.access_key_id, creds.secret_access_key, creds.ca_cert))
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def service(tenant: TenantRef) -> Body:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(tenant, _naming.worker_name(tenant.name)),
        "spec": {
            "type": "ClusterIP",
            "selector": _naming.selector(tenant.name),
            "ports": [
                {"name": "grpc", "port": _naming.WORKER_PORT, "targetPort": "grpc"},
                {"name": "metrics", "port": _naming.METRICS_PORT, "targetPort": "metrics"},
            ],
        },
    }


def network_policy(tenant: TenantRef, settings: OperatorSettings) -> Body:
    """The worker admits gRPC from the release's gateway pods, metrics from its scrapers.

    The gateway peer is the gateway's labels *in the gateway's namespace*: a pod
    with those labels elsewhere is not admitted. The scrapers are
    ``settings.metrics_from`` (the chart's Prometheus and ``metricsFrom``); none
    leaves the metrics port shut. The kubelet's probes come from the node, which
    a NetworkPolicy always lets in.
    """
    ingress: list[dict[str, Any]] = [
        {
            "from": [
                {
                    "namespaceSelector": _namespace_selector(settings.gateway_namespace),
                    "podSelector": {"matchLabels": dict(settings.gateway_selector)},
                }
            ],
            "ports": [{"protocol": "TCP", "port": _naming.WORKER_PORT}],
        }
    ]
    if scrapers := settings.metrics_from.peers():
        ingress.append(
            {"from": scrapers, "ports": [{"protocol": "TCP", "port": _naming.METRICS_PORT}]}
        )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(tenant, _naming.worker_name(tenant.name)),
        "spec": {
            "podSelector": {"matchLabels": _naming.selector(tenant.name)},
            "policyTypes": ["Ingress"],
            "ingress": ingress,
        },
    }


def _namespace_selector(namespace: str) -> dict[str, Any]:
    """The one namespace by its immutable name label; empty selects every namespace."""
    if not namespace:
        return {}
    return {"matchLabels": {"kubernetes.io/metadata.name": namespace}}


def pod_disruption_budget(tenant: TenantRef) -> Body:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(tenant, _naming.worker_name(tenant.name)),
        "spec": {
            "minAvailable": 1,
            "selector": {"matchLabels": _naming.selector(tenant.name)},
        },
    }
