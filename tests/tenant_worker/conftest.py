"""Every worker test runs against both backends: a real PostgreSQL and SQLite."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from stowage.v1 import worker_pb2 as pb
from stowage.v1 import worker_pb2_grpc
from stowage_testing.postgres import PostgresServer
from stowage_testing.worker import NOTES_SCHEMA, WorkerProcess, running_worker
from tenant_worker.storage._db import sync_url

POLICY: dict[str, Any] = {
    "retention": {"collections": {"cache": 1}},
    "quotas": {"maxObjects": 100000, "maxBytes": "1Gi", "maxObjectBytes": "64Ki"},
    "collections": [
        {
            "name": "notes",
            "schemaVersion": 2,
            "schema": NOTES_SCHEMA,
            "upgrades": [{"fromVersion": 1, "rename": {"text": "body"}, "defaults": {"tags": []}}],
        }
    ],
}


class Client:
    """A real gRPC client acting for one user."""

    def __init__(
        self, channel: grpc.Channel, user_id: str = "", tenant: str = "acme", instance: str = ""
    ) -> None:
        self.channel = channel
        self.stub = worker_pb2_grpc.TenantWorkerStub(channel)
        self.user_id = user_id
        self.tenant = tenant
        self.instance = instance
        self.correlation_id = ""

    def metadata(self) -> list[tuple[str, str]]:
        md = [("x-stowage-tenant", self.tenant)] if self.tenant else []
        if self.instance:
            md.append(("x-stowage-instance", self.instance))
        if self.user_id:
            md.append(("x-stowage-user-id", self.user_id))
        if self.correlation_id:
            md.append(("x-correlation-id", self.correlation_id))
        return md

    def call(self, method: str, request: Any) -> Any:
        return getattr(self.stub, method)(request, metadata=self.metadata(), timeout=15)

    def put(self, collection: str, id: str, data: Any, **kw: Any) -> pb.PutObjectResponse:
        raw = data if isinstance(data, bytes) else json.dumps(data).encode()
        return self.call(
            "PutObject", pb.PutObjectRequest(collection=collection, id=id, data_json=raw, **kw)
        )

    def get(self, collection: str, id: str) -> pb.StoredObject:
        return self.call("GetObject", pb.GetObjectRequest(collection=collection, id=id)).object

    def list(self, collection: str, page_size: int = 0, cursor: str = "") -> pb.ListObjectsResponse:
        req = pb.ListObjectsRequest(collection=collection, page_size=page_size, cursor=cursor)
        return self.call("ListObjects", req)

    def delete(self, collection: str, id: str, **kw: Any) -> pb.DeleteObjectResponse:
        return self.call("DeleteObject", pb.DeleteObjectRequest(collection=collection, id=id, **kw))

    def as_new_user(self) -> Client:
        reply = self.stub.ResolveUser(
            pb.ResolveUserRequest(issuer="https://issuer.test/", subject=uuid.uuid4().hex),
            metadata=self.metadata(),
            timeout=15,
        )
        return Client(self.channel, reply.user_id, self.tenant, self.instance)


def data(obj: pb.StoredObject) -> Any:
    return json.loads(obj.data_json)


def status_of(call: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres":
        request.getfixturevalue("postgres")
    return str(request.param)


@pytest.fixture(scope="module")
def new_database_url(
    backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Callable[[], str]:
    def make() -> str:
        if backend == "sqlite":
            path = tmp_path_factory.mktemp("sqlite") / "tenant.db"
            return f"sqlite+aiosqlite:///{path}"
        server: PostgresServer = request.getfixturevalue("postgres")
        return server.sqlalchemy_url(server.create_database("worker"))

    return make


@pytest.fixture(scope="module")
def worker(
    new_database_url: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """One worker per backend and module, on the standard policy."""
    with running_worker(new_database_url(), tmp_path_factory.mktemp("worker"), POLICY) as w:
        yield w


@pytest.fixture
def make_worker(
    new_database_url: Callable[[], str], tmp_path: Path
) -> Iterator[Callable[[dict[str, Any]], WorkerProcess]]:
    """Fresh workers with their own database and policy, stopped after the test."""
    with ExitStack() as stack:

        def make(policy: dict[str, Any]) -> WorkerProcess:
            workdir = tmp_path / uuid.uuid4().hex[:8]
            return stack.enter_context(running_worker(new_database_url(), workdir, policy))

        yield make


@pytest.fixture(scope="module")
def channel(worker: WorkerProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(worker.address) as ch:
        yield ch


@pytest.fixture
def client(channel: grpc.Channel) -> Client:
    """A fresh user on the shared worker: tests never see each other's objects."""
    return Client(channel).as_new_user()


def open_client(w: WorkerProcess, stack: ExitStack) -> Client:
    ch = stack.enter_context(grpc.insecure_channel(w.address))
    return Client(ch).as_new_user()


def database(w: WorkerProcess) -> sa.Engine:
    """Direct access to the worker's database, to inspect rows or move time."""
    return sa.create_engine(sync_url(w.database_url), poolclass=sa.pool.NullPool)
