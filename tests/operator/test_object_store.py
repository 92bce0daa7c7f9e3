"""A Region's ``spec.objectStore`` reaches the tenant's worker: the operator copies the
credentials into the tenant's namespace, the worker's Deployment names them by reference
beside the bucket and the tenant's own key prefix, and those settings, resolved as the
kubelet resolves them, reach a real S3-compatible server (moto, started here).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stowage_testing.kube import KubeCluster, KubeError
from stowage_testing.operator import (
    ADMIN_NAMESPACE,
    make_region,
    secret_data,
    tenant_doc,
    wait_for_tenant,
)
from stowage_testing.postgres import PostgresServer
from stowage_testing.s3 import REGION, S3Server, s3_server
from stowage_testing.tools import eventually
from tenant_worker._settings import WorkerSettings
from tenant_worker.files import Bucket

pytestmark = [pytest.mark.kube, pytest.mark.postgres]

API = "stowage.dev/v1alpha1"


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with s3_server(tmp_path_factory.mktemp("s3")) as server:
        yield server


def object_store_region(kube: KubeCluster, postgres: PostgresServer, s3: S3Server) -> str:
    """A Region whose files go to a fresh bucket of ``s3``, with its credentials Secret."""
    secret = f"s3-{uuid.uuid4().hex[:8]}"
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": secret, "namespace": ADMIN_NAMESPACE},
            "stringData": {"id": s3.access_key_id, "key": s3.secret_access_key},
        }
    )
    return make_region(
        kube,
        postgres,
        objectStore={
            "endpoint": s3.endpoint,
            "bucket": s3.create_bucket(),
            "region": REGION,
            "prefix": "stowage/",
            "credentialsSecretRef": {
                "name": secret,
                "namespace": ADMIN_NAMESPACE,
                "accessKeyIdKey": "id",
                "secretAccessKeyKey": "key",
            },
            "serverSideEncryption": {"type": "AES256"},
        },
        backup={"persistentVolumeClaim": {"claimName": "region-backups"}},
    )


def resolved_env(kube: KubeCluster, namespace: str, container: dict[str, Any]) -> dict[str, str]:
    """The container's variables as the kubelet gives them: values, and Secret keys."""
    env: dict[str, str] = {}
    for var in container["env"]:
        if "value" in var:
            env[var["name"]] = var["value"]
        elif ref := (var.get("valueFrom") or {}).get("secretKeyRef"):
            env[var["name"]] = secret_data(kube, namespace, ref["name"])[ref["key"]]
    return env


def test_the_operator_carries_the_regions_object_store_to_the_tenants_worker(
    kube: KubeCluster,
    namespace: str,
    postgres: PostgresServer,
    s3: S3Server,
    tmp_path: Path,
) -> None:
    region = object_store_region(kube, postgres, s3)
    kube.apply(tenant_doc("acme", namespace, region))
    wait_for_tenant(kube, namespace, "acme", ready=True, timeout=90)

    # The credentials, copied into the tenant's namespace.
    copied = secret_data(kube, namespace, "tenant-acme-object-store")
    assert copied == {
        "access-key-id": s3.access_key_id,
        "secret-access-key": s3.secret_access_key,
    }
    deployment = kube.get("apps/v1", "Deployment", "tenant-acme-worker", namespace)
    assert deployment is not None
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    env = {v["name"]: v for v in container["env"]}
    # The keys only by reference, never as values in the Deployment.
    for variable, key in (
        ("STOWAGE_OBJECT_STORE_ACCESS_KEY_ID", "access-key-id"),
        ("STOWAGE_OBJECT_STORE_SECRET_ACCESS_KEY", "secret-access-key"),
    ):
        assert env[variable] == {
            "name": variable,
            "valueFrom": {"secretKeyRef": {"name": "tenant-acme-object-store", "key": key}},
        }
    assert s3.secret_access_key not in str(deployment)
    assert env["STOWAGE_OBJECT_STORE_PREFIX"]["value"] == f"stowage/tenants/{namespace}/acme/"
    assert env["STOWAGE_OBJECT_STORE_SSE"]["value"] == "AES256"
    assert pod["metadata"]["annotations"]["stowage.dev/object-store-credentials"]
    # The restore drill reads the files stored there back: it gets the same variables.
    drill = kube.get("batch/v1", "CronJob", "tenant-acme-drill", namespace)
    assert drill is not None
    (job,) = drill["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    drill_env = {v["name"]: v for v in job["env"]}
    for name in ("STOWAGE_OBJECT_STORE_ENDPOINT", "STOWAGE_OBJECT_STORE_SECRET_ACCESS_KEY"):
        assert drill_env[name] == env[name]

    # What the worker makes of them, resolved as its pod gets them, reaches the bucket.
    variables = resolved_env(kube, namespace, container)
    variables["STOWAGE_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}"
    config = WorkerSettings.from_env(variables).object_store()
    assert config is not None and config.endpoint == s3.endpoint

    async def round_trip() -> bytes:
        bucket = Bucket(config)
        try:
            await bucket.put("files/probe", b"carried by the operator")
            pieces = await bucket.open("files/probe", 0, 23)
            return b"".join([piece async for piece in pieces])
        finally:
            await bucket.close()

    assert asyncio.run(round_trip()) == b"carried by the operator"
    assert s3.keys(config.bucket) == [f"stowage/tenants/{namespace}/acme/files/probe"]

    # Without an object store, the variables and the copied Secret go (the next resync).
    kube.patch(API, "Region", region, {"spec": {"objectStore": None}})

    def back_to_the_database() -> bool:
        found = kube.get("apps/v1", "Deployment", "tenant-acme-worker", namespace) or {}
        containers = found.get("spec", {}).get("template", {}).get("spec", {}).get("containers")
        names = {v["name"] for v in (containers or [{}])[0].get("env", [])}
        return bool(names) and not any(n.startswith("STOWAGE_OBJECT_STORE_") for n in names)

    eventually(back_to_the_database, 60, "the worker without STOWAGE_OBJECT_STORE_*")
    eventually(
        lambda: kube.get("v1", "Secret", "tenant-acme-object-store", namespace) is None,
        30,
        "the copied credentials deleted",
    )


def test_a_tenant_waits_while_the_object_store_secret_is_missing(
    kube: KubeCluster, namespace: str, postgres: PostgresServer, s3: S3Server
) -> None:
    region = make_region(
        kube,
        postgres,
        objectStore={
            "endpoint": s3.endpoint,
            "bucket": "some-bucket",
            "credentialsSecretRef": {"name": "no-such-secret", "namespace": ADMIN_NAMESPACE},
        },
    )
    kube.apply(tenant_doc("acme", namespace, region))
    tenant = wait_for_tenant(
        kube, namespace, "acme", ready=False, reason="ObjectStoreSecretMissing", timeout=60
    )
    assert kube.get("apps/v1", "Deployment", "tenant-acme-worker", namespace) is None, tenant


@pytest.mark.parametrize(
    ("store", "says"),
    [
        (
            {"serverSideEncryption": {"type": "AES256", "kmsKeyId": "k"}},
            "kmsKeyId needs type aws:kms",
        ),
        ({"caSecretRef": {"name": "ca", "namespace": "x"}}, "caSecretRef needs an https://"),
        ({"bucket": "Not_A_Bucket"}, "spec.objectStore.bucket"),
        ({"endpoint": "s3.example.com"}, "spec.objectStore.endpoint"),
    ],
)
def test_the_api_server_refuses_an_object_store_it_can_tell_is_wrong(
    kube: KubeCluster, postgres: PostgresServer, store: dict[str, Any], says: str
) -> None:
    good = {
        "endpoint": "http://s3.example.com",
        "bucket": "files",
        "credentialsSecretRef": {"name": "s3", "namespace": ADMIN_NAMESPACE},
    }
    with pytest.raises(KubeError) as refused:
        make_region(kube, postgres, objectStore={**good, **store})
    assert refused.value.status == 422
    assert says in str(refused.value.body)
