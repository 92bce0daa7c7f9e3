"""Malformed requests get a clear status and write nothing."""

from __future__ import annotations

from typing import Any

import grpc
import httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from stowage.v1 import worker_pb2 as pb
from stowage.wire import FIELD_KEY
from stowage_testing.worker import WorkerProcess
from tests.tenant_worker.conftest import Client, database, status_of


def _object_count(worker: WorkerProcess, user_id: str) -> int:
    with database(worker).connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT count(*) FROM objects WHERE owner = :u"), {"u": user_id}
            ).scalar_one()
        )


@pytest.mark.parametrize(
    ("collection", "object_id", "payload", "field"),
    [
        ("items", "x", b"{not json", "data_json"),
        ("items", "x", b"\xff\xfe", "data_json"),
        ("items", "x", b"[1, 2]", "data_json"),
        ("items", "has space", b"{}", "id"),
        ("items", "x" * 129, b"{}", "id"),
        ("Bad-Collection", "x", b"{}", "collection"),
    ],
)
def test_malformed_put_is_invalid_argument_naming_the_field(
    client: Client,
    worker: WorkerProcess,
    collection: str,
    object_id: str,
    payload: bytes,
    field: str,
) -> None:
    error = status_of(lambda: client.put(collection, object_id, payload))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(f"{field}:")
    assert _object_count(worker, client.user_id) == 0


def test_negative_numbers_are_refused(client: Client) -> None:
    for kw in ({"expected_version": -1}, {"ttl_seconds": -5}):
        error = status_of(lambda kw=kw: client.put("items", "x", {"a": 1}, **kw))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = status_of(lambda: client.list("items", page_size=-1))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_missing_user_metadata_is_unauthenticated(client: Client) -> None:
    anonymous = Client(client.channel)
    error = status_of(lambda: anonymous.put("items", "x", {"a": 1}))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "x-stowage-user-id" in error.details()
    malformed = Client(client.channel, "../../etc/passwd")
    assert status_of(lambda: malformed.get("items", "x")).code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_call_for_another_tenant_is_refused_and_writes_nothing(
    client: Client, worker: WorkerProcess
) -> None:
    for tenant in ("globex", ""):
        misrouted = Client(client.channel, client.user_id, tenant=tenant)
        error = status_of(lambda m=misrouted: m.put("items", "x", {"a": 1}))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "serves tenant 'acme'" in error.details()
        error = status_of(lambda m=misrouted: m.get("items", "x"))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert _object_count(worker, client.user_id) == 0
    # The refusals are counted, by method and code.
    metrics = httpx.get(f"http://127.0.0.1:{worker.metrics_port}/metrics").text
    refused = {
        s.labels["method"]: s.value
        for family in text_string_to_metric_families(metrics)
        for s in family.samples
        if s.name == "stowage_worker_rpcs_total" and s.labels["code"] == "PERMISSION_DENIED"
    }
    assert refused == {"PutObject": 2.0, "GetObject": 2.0}


def test_a_user_id_never_resolved_cannot_write(client: Client, worker: WorkerProcess) -> None:
    ghost = Client(client.channel, "0" * 32)
    error = status_of(lambda: ghost.put("items", "x", {"a": 1}))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert _object_count(worker, "0" * 32) == 0


def test_oversized_message_is_refused_by_the_transport(client: Client) -> None:
    huge = b'{"x": "' + b"a" * (9 * 1024 * 1024) + b'"}'
    error = status_of(lambda: client.put("items", "huge", huge))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_resolve_user_requires_issuer_and_subject(client: Client) -> None:
    for req in (pb.ResolveUserRequest(issuer="i"), pb.ResolveUserRequest(subject="s")):
        error = status_of(lambda req=req: client.stub.ResolveUser(req, metadata=client.metadata()))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def _field(error: grpc.RpcError) -> str | None:
    trailing = dict(error.trailing_metadata() or ())  # type: ignore[attr-defined]
    value = trailing.get(FIELD_KEY)
    return value.decode() if isinstance(value, bytes) else None


@pytest.mark.parametrize(
    ("payload", "kw", "field"),
    [
        (b'{"a": [1, NaN]}', {}, "data.a[1]"),
        (b'{"a": Infinity}', {}, "data.a"),
        (b'{"a": 9007199254740992}', {}, "data.a"),
        (b'{"a": "x\\ud800"}', {}, "data.a"),
        (b'{"a\\u0000": 1}', {}, "data"),
        (b'{"a": ' + b"[" * 70 + b"]" * 70 + b"}", {}, "data.a" + "[0]" * 63),
        (b'{"a": 1' + b"0" * 5000 + b"}", {}, "data_json"),
        (b'{"a": 1}', {"ttl_seconds": 2**62}, "ttl_seconds"),
        (b'{"a": 1}', {"idempotency_key": "k\x00"}, "idempotency_key"),
    ],
)
def test_the_worker_refuses_what_it_could_not_give_back_naming_the_field(
    client: Client, worker: WorkerProcess, payload: bytes, kw: dict[str, Any], field: str
) -> None:
    """The worker is the authority: a direct call that skips the gateway's check is refused."""
    error = status_of(lambda: client.put("items", "x", payload, **kw))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert _field(error) == field
    assert _object_count(worker, client.user_id) == 0


def test_a_quota_refusal_names_its_quota_in_the_answer(client: Client) -> None:
    big = {"text": "x" * (65 * 1024)}
    error = status_of(lambda: client.put("items", "big", big))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert _field(error) == "quotas.maxObjectBytes"
