"""A worker started with an instance id refuses calls meant for another instance."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from stowage.v1 import worker_pb2 as pb
from stowage_testing.worker import WorkerProcess, running_worker
from tests.tenant_worker.conftest import Client, data, status_of


@pytest.fixture
def run_a(new_database_url: Callable[[], str], tmp_path: Path) -> Iterator[WorkerProcess]:
    """A worker of tenant acme that is instance ``run-a``."""
    with running_worker(new_database_url(), tmp_path / "run-a", instance="run-a") as worker:
        yield worker


def test_a_call_for_another_instance_is_refused_while_its_own_instance_is_served(
    run_a: WorkerProcess,
) -> None:
    with grpc.insecure_channel(run_a.address) as channel:
        own = Client(channel, instance="run-a").as_new_user()
        own.put("items", "x", {"from": "run-a"})
        other = Client(channel, own.user_id, instance="run-b")

        for call in (
            lambda: other.get("items", "x"),
            lambda: other.put("items", "x", {"from": "run-b"}),
            lambda: other.list("items"),
            lambda: other.call(
                "ResolveUser", pb.ResolveUserRequest(issuer="https://issuer.test/", subject="s")
            ),
        ):
            error = status_of(call)
            assert error.code() == grpc.StatusCode.PERMISSION_DENIED
            assert error.details() == (
                "this worker is instance 'run-a' of tenant 'acme'; the call was for instance "
                "'run-b'"
            )
        export = pb.ExportUserDataRequest()
        exported = status_of(
            lambda: list(other.stub.ExportUserData(export, metadata=other.metadata(), timeout=15))
        )
        assert exported.code() == grpc.StatusCode.PERMISSION_DENIED

        # The refused put wrote nothing; the own instance reads what it wrote.
        assert data(own.get("items", "x")) == {"from": "run-a"}
        assert own.get("items", "x").version == 1


def test_a_call_that_names_no_instance_is_not_checked_for_one(run_a: WorkerProcess) -> None:
    with grpc.insecure_channel(run_a.address) as channel:
        unnamed = Client(channel).as_new_user()
        unnamed.put("items", "x", {"a": 1})
        assert data(unnamed.get("items", "x")) == {"a": 1}
        # The tenant is still checked.
        misrouted = Client(channel, unnamed.user_id, tenant="globex", instance="run-a")
        assert status_of(lambda: misrouted.get("items", "x")).code() == (
            grpc.StatusCode.PERMISSION_DENIED
        )


def test_a_worker_without_an_instance_id_serves_any_instance_named(
    worker: WorkerProcess, channel: grpc.Channel
) -> None:
    named = Client(channel, instance="any-run").as_new_user()
    named.put("items", "x", {"a": 1})
    assert data(named.get("items", "x")) == {"a": 1}


def test_an_instance_id_that_is_not_a_metadata_value_is_a_usage_error(tmp_path: Path) -> None:
    worker = WorkerProcess(
        f"sqlite+aiosqlite:///{tmp_path / 'w.db'}", tmp_path, instance="two words"
    )
    with pytest.raises(RuntimeError, match="is not an instance id"):
        worker.start()
