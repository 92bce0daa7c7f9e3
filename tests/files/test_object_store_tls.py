"""A Region's bucket behind HTTPS with a private CA: the S3 server (moto, started here on
127.0.0.1) presents a certificate the test's own CA signed. A worker given that CA
(``STOWAGE_OBJECT_STORE_CA_FILE``, as the operator mounts a Region's ``caSecretRef``)
stores and serves files there; a worker that trusts only the system's CAs refuses to
talk to it, and the link says the file store could not be reached, keeping nothing."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from stowage_testing.gateway import (
    Issuer,
)
from stowage_testing.s3 import S3Server, s3_server
from stowage_testing.tls import Authority
from tests.files.conftest import Platform, random_bytes, running_files_platform, sha256

pytestmark = [pytest.mark.anyio]

MiB = 2**20
#: The smallest part S3 takes; a file past it is a multipart upload.
PART = 5 * MiB
#: ``trusting`` is given the CA; ``untrusting`` trusts only the system's CAs.
TENANTS = ("trusting", "untrusting")


def _prefix(tenant: str) -> str:
    return f"tenants/tls-test/{tenant}/"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[S3Server, str]]:
    authority = Authority.make("object store test CA")
    with s3_server(tmp_path_factory.mktemp("s3-tls"), authority) as server:
        assert server.endpoint.startswith("https://")
        yield server, server.create_bucket()


@pytest.fixture(scope="module")
def tls_platform(
    issuer: Issuer, store: tuple[S3Server, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    server, bucket = store
    workdir = tmp_path_factory.mktemp("bucket-tls")
    tenants = {name: {"files": {"maxFileBytes": "20Mi"}} for name in TENANTS}
    databases = {name: f"sqlite+aiosqlite:///{workdir / f'{name}.db'}" for name in TENANTS}
    envs = {
        name: server.worker_env(bucket, _prefix(name), STOWAGE_OBJECT_STORE_PART_BYTES=str(PART))
        for name in TENANTS
    }
    del envs["untrusting"]["STOWAGE_OBJECT_STORE_CA_FILE"]
    with running_files_platform(issuer, workdir, tenants, databases, envs) as found:
        yield found


async def test_a_worker_given_the_regions_ca_keeps_and_serves_files_over_https(
    tls_platform: Platform, store: tuple[S3Server, str], user: str
) -> None:
    server, bucket = store
    data = random_bytes(PART + 123)  # two parts: a multipart upload
    created = await tls_platform.upload_link(user, data, tenant="trusting")
    async with httpx.AsyncClient(timeout=120) as http:
        stored = await http.put(created["upload"]["url"], content=data)
        assert stored.status_code == 200, stored.text
        file = await tls_platform.tool(user, "files_get", {"id": created["file"]["id"]}, "trusting")
        got = await http.get(file.structured_content["download"]["url"])
        ranged = await http.get(
            file.structured_content["download"]["url"], headers={"range": "bytes=5242880-"}
        )
    assert got.status_code == 200 and sha256(got.content) == sha256(data)
    assert ranged.status_code == 206 and ranged.content == data[PART:]
    # The object is in the bucket, read back over HTTPS by the server's own client.
    (row,) = tls_platform.rows(
        "trusting", "SELECT storage, content FROM files WHERE id = :f", f=created["file"]["id"]
    )
    key = f"{_prefix('trusting')}files/{row.content}"
    assert row.storage == "bucket" and server.keys(bucket, _prefix("trusting")) == [key]
    body = server.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    assert sha256(body) == sha256(data)


async def test_a_worker_without_the_ca_refuses_the_servers_certificate_and_keeps_nothing(
    tls_platform: Platform, store: tuple[S3Server, str], user: str
) -> None:
    server, bucket = store
    data = random_bytes(2000)
    created = await tls_platform.upload_link(user, data, tenant="untrusting")
    async with httpx.AsyncClient(timeout=120) as http:
        refused = await http.put(created["upload"]["url"], content=data)
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1", refused.text
    assert refused.json()["message"] == (
        "The tenant's file store (its S3-compatible bucket) could not be reached. "
        "No file was changed; retry in 1 s."
    )
    assert server.keys(bucket, _prefix("untrusting")) == []
    assert server.open_uploads(bucket, _prefix("untrusting")) == []
    (row,) = tls_platform.rows(
        "untrusting", "SELECT version, content FROM files WHERE id = :f", f=created["file"]["id"]
    )
    assert row.version == 0 and row.content is None
    # Why, for whoever runs the platform (the gateway's log, under the correlation id):
    # the certificate check, and where a private CA goes.
    (line,) = [
        line
        for line in tls_platform.gateway.log_lines()
        if line.get("correlation_id") == refused.headers["x-request-id"]
        and "unavailable" in line["msg"]
    ]
    assert "its TLS certificate was not accepted ([SSL: CERTIFICATE_VERIFY_FAILED]" in line["msg"]
    assert "spec.objectStore.caSecretRef" in line["msg"]
    assert server.secret_access_key not in line["msg"]
