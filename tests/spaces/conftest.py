"""Spaces against a real worker process on both backends: a real PostgreSQL and SQLite."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import grpc
import pytest

from stowage.v1 import worker_pb2 as pb
from stowage.v1 import worker_pb2_grpc
from stowage.wire import CURRENT_SPACE_OBJECT_KEY, ROLE_NEEDED_KEY
from stowage_testing.postgres import PostgresServer
from stowage_testing.worker import WorkerProcess, running_worker

ISSUER = "https://issuer.test/"
LISTS_SCHEMA = {"type": "object", "properties": {"items": {"type": "array"}}}


def policy(**extra: Any) -> dict[str, Any]:
    return {
        "identity": {"nameClaim": "name", "emailClaim": "email", "inviteByEmail": True},
        "collections": [{"name": "lists", "shared": True, "schema": LISTS_SCHEMA}],
        **extra,
    }


class Member:
    """A real gRPC client acting for one user of the tenant."""

    def __init__(
        self, channel: grpc.Channel, subject: str, name: str = "", email: str = "", org: str = ""
    ):
        self.stub = worker_pb2_grpc.TenantWorkerStub(channel)
        self.subject = subject
        self.user_id = self.sign_in(name, email, org)

    def sign_in(self, name: str = "", email: str = "", org: str = "") -> str:
        """ResolveUser with these claims, as the gateway sends them at a sign-in."""
        claims = pb.Claims(name=name, email=email, org=org)
        reply = self.stub.ResolveUser(
            pb.ResolveUserRequest(issuer=ISSUER, subject=self.subject, claims=claims),
            metadata=[("x-stowage-tenant", "acme")],
            timeout=15,
        )
        return str(reply.user_id)

    def spaces(self) -> dict[str, pb.Space]:
        """The caller's spaces by id."""
        return {s.id: s for s in self.call("ListSpaces", pb.ListSpacesRequest()).spaces}

    def call(self, method: str, request: Any) -> Any:
        md = [("x-stowage-tenant", "acme"), ("x-stowage-user-id", self.user_id)]
        return getattr(self.stub, method)(request, metadata=md, timeout=30)

    def create(self, name: str = "Family") -> str:
        return str(self.call("CreateSpace", pb.CreateSpaceRequest(name=name)).id)

    def invite(self, space: str, other: Member, role: str = "editor") -> pb.InviteMemberResponse:
        req = pb.InviteMemberRequest(space=space, user=other.subject, role=role)
        return self.call("InviteMember", req)

    def put(self, space: str, id: str, data: Any, **kw: Any) -> pb.PutSpaceObjectResponse:
        req = pb.PutSpaceObjectRequest(
            space=space, collection="lists", id=id, data_json=json.dumps(data).encode(), **kw
        )
        return self.call("PutSpaceObject", req)

    def get(self, space: str, id: str) -> pb.SpaceObject:
        return self.call(
            "GetSpaceObject", pb.GetSpaceObjectRequest(space=space, collection="lists", id=id)
        )

    def changes(self, space: str, cursor: str = "", limit: int = 0) -> pb.ListSpaceChangesResponse:
        req = pb.ListSpaceChangesRequest(space=space, cursor=cursor, limit=limit)
        return self.call("ListSpaceChanges", req)

    def handle(self, space: str) -> str:
        detail = self.call("GetSpace", pb.GetSpaceRequest(space=space))
        return str(next(m.member for m in detail.members if m.you))


def refusal(call: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


def trailing(error: grpc.RpcError, key: str) -> bytes | None:
    for k, v in error.trailing_metadata() or ():  # type: ignore[attr-defined]
        if k == key:
            return bytes(v)
    return None


def current_of(error: grpc.RpcError) -> pb.SpaceObject:
    raw = trailing(error, CURRENT_SPACE_OBJECT_KEY)
    assert raw is not None, "a conflict in a space carries the current object"
    return pb.SpaceObject.FromString(raw)


def role_needed(error: grpc.RpcError) -> str | None:
    raw = trailing(error, ROLE_NEEDED_KEY)
    return raw.decode() if raw is not None else None


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
        return server.sqlalchemy_url(server.create_database("spaces"))

    return make


@pytest.fixture(scope="module")
def worker(
    new_database_url: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    with running_worker(new_database_url(), tmp_path_factory.mktemp("worker"), policy()) as w:
        yield w


@pytest.fixture(scope="module")
def channel(worker: WorkerProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(worker.address) as ch:
        yield ch


@pytest.fixture
def member(channel: grpc.Channel) -> Callable[..., Member]:
    """A fresh user of the shared worker."""

    def make(name: str = "", email: str = "", org: str = "") -> Member:
        return Member(channel, uuid.uuid4().hex, name, email, org)

    return make


@pytest.fixture
def make_worker(
    new_database_url: Callable[[], str], tmp_path: Path
) -> Iterator[Callable[[dict[str, Any]], WorkerProcess]]:
    with ExitStack() as stack:

        def make(p: dict[str, Any]) -> WorkerProcess:
            workdir = tmp_path / uuid.uuid4().hex[:8]
            return stack.enter_context(running_worker(new_database_url(), workdir, p))

        yield make
