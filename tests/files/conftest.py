"""Files through real parts: a gateway process with real tokens, a worker per tenant on a real
PostgreSQL and on SQLite, signed links served over HTTP, bytes read back from the database."""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import sqlalchemy as sa

from gateway.files import CURRENT_KEY, tenant_key
from stowage_testing.gateway import (
    COLLECTIONS,
    WORKER_POLICY,
    GatewayProcess,
    Issuer,
    mcp_client,
    running_gateway,
    running_issuer,
    tenant_entry,
)
from stowage_testing.postgres import PostgresServer
from stowage_testing.worker import WorkerProcess, running_worker
from tenant_worker.storage._db import sync_url

#: The tenants of every gateway here: their spec beside the entry's auth and collections.
TENANTS: dict[str, dict[str, Any]] = {
    "acme": {"files": {"maxFileBytes": "30Mi"}},
    # A small per-user quota, for a quota reached while an upload streams.
    "tight": {
        "files": {"maxFileBytes": "4Mi", "allowedContentTypes": ["image/*", "text/plain"]},
        "quotas": {"maxBytes": "1Gi", "perUser": {"maxBytes": "1Mi"}},
    },
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="package")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Issuer]:
    with running_issuer(tmp_path_factory.mktemp("issuer")) as found:
        yield found


@pytest.fixture(scope="package", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@dataclass
class Platform:
    """A gateway, a worker per tenant, and a way into each tenant's database."""

    gateway: GatewayProcess
    issuer: Issuer
    workers: dict[str, WorkerProcess]
    databases: dict[str, str]
    #: The gateway's ``--files-keys-dir``.
    keys_dir: Path

    def tenant_key(self, tenant: str = "acme") -> bytes:
        """The key ``tenant``'s links are signed with (derived from the master key)."""
        return tenant_key((self.keys_dir / CURRENT_KEY).read_bytes().strip(), tenant)

    def token(self, user: str, tenant: str = "acme") -> str:
        return self.issuer.token(self.gateway.url(tenant), subject=user)

    async def tool(self, user: str, name: str, args: dict[str, Any], tenant: str = "acme") -> Any:
        async with mcp_client(self.gateway.url(tenant), self.token(user, tenant)) as client:
            return await client.call_tool(name, args)

    async def upload_link(
        self, user: str, data: bytes, tenant: str = "acme", **args: Any
    ) -> dict[str, Any]:
        """files_create_upload for ``data``: the structured result (file and upload link)."""
        given = {"name": "blob.bin", "content_type": "application/octet-stream", **args}
        given.setdefault("size", len(data))
        result = await self.tool(user, "files_create_upload", given, tenant)
        assert not result.is_error, result.content
        return dict(result.structured_content)

    def rows(self, tenant: str, sql: str, **params: Any) -> list[Any]:
        """Run ``sql`` on the tenant's database directly (committed); its rows."""
        engine = sa.create_engine(sync_url(self.databases[tenant]))
        try:
            with engine.begin() as conn:
                return list(conn.execute(sa.text(sql), params).all())
        finally:
            engine.dispose()

    def chunks_of(self, tenant: str, file_id: str) -> tuple[int, int]:
        """(chunks, bytes) the database holds for ``file_id``."""
        ((count, size),) = self.rows(
            tenant,
            "SELECT count(*), coalesce(sum(length(data)), 0) FROM file_chunks WHERE file_id = :f",
            f=file_id,
        )
        return int(count), int(size)


def database_url(
    backend: str, workdir: Path, tenant: str, request: pytest.FixtureRequest, name: str = "files"
) -> str:
    """A new database for ``tenant``: on the session's PostgreSQL, or a SQLite file."""
    if backend == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres")
        return server.sqlalchemy_url(server.create_database(name))
    return f"sqlite+aiosqlite:///{workdir / f'{tenant}.db'}"


@contextmanager
def running_files_platform(
    issuer: Issuer,
    workdir: Path,
    tenants: dict[str, dict[str, Any]],
    databases: dict[str, str],
    envs: dict[str, dict[str, str]] | None = None,
) -> Iterator[Platform]:
    """A worker per tenant of ``tenants`` (its spec, on its database of ``databases``, with
    its variables of ``envs``) and a gateway signing links with a master key of its own."""
    keys_dir = workdir / "files-keys"
    keys_dir.mkdir()
    (keys_dir / CURRENT_KEY).write_text(secrets.token_hex(32))
    shared = {"collections": COLLECTIONS, "retention": WORKER_POLICY["retention"]}
    with ExitStack() as stack:
        workers: dict[str, WorkerProcess] = {
            name: stack.enter_context(
                running_worker(
                    databases[name],
                    workdir / f"worker-{name}",
                    {**shared, **spec},
                    tenant=name,
                    env=(envs or {}).get(name),
                )
            )
            for name, spec in tenants.items()
        }
        g = GatewayProcess(workdir=workdir / "gateway")
        g.workdir.mkdir()
        g.write_tenants(
            [
                tenant_entry(name, g, issuer, workers[name].address, **spec)
                for name, spec in tenants.items()
            ]
        )
        gateway = stack.enter_context(
            running_gateway(g.workdir, port=g.port, extra_args=("--files-keys-dir", str(keys_dir)))
        )
        yield Platform(gateway, issuer, workers, databases, keys_dir)


@pytest.fixture(scope="package")
def platform(
    backend: str,
    issuer: Issuer,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[Platform]:
    workdir = tmp_path_factory.mktemp(f"files-{backend}")
    databases = {name: database_url(backend, workdir, name, request) for name in TENANTS}
    with running_files_platform(issuer, workdir, TENANTS, databases) as found:
        yield found


@pytest.fixture
def user() -> str:
    return f"user-{secrets.token_hex(5)}"


def proc_status(pid: int, field: str) -> int:
    """A process's ``field`` of /proc/<pid>/status (VmRSS, VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")


def random_bytes(size: int) -> bytes:
    return os.urandom(size)


def with_query(url: str, **changes: str) -> str:
    """``url`` with these query parameters changed (a link altered or forged)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return parts._replace(query=urlencode(query)).geturl()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


Rows = Callable[[str], list[Any]]
