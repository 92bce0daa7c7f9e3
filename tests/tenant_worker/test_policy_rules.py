"""Collection schemas and upgrades, quotas, retention and TTL."""

from __future__ import annotations

import copy
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from stowage.v1 import worker_pb2 as pb
from stowage_testing.tools import eventually
from stowage_testing.worker import WorkerProcess
from tests.tenant_worker.conftest import (
    NOTES_SCHEMA,
    POLICY,
    Client,
    data,
    database,
    open_client,
    status_of,
)

MakeWorker = Callable[[dict[str, Any]], WorkerProcess]


def test_write_is_validated_against_the_collection_schema(client: Client) -> None:
    error = status_of(lambda: client.put("notes", "n1", {"title": 42}))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("data.title:")
    error = status_of(lambda: client.put("notes", "n1", {"body": "no title"}))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("data.title:")
    error = status_of(lambda: client.put("notes", "n1", {"title": "t", "tags": ["a", 3]}))
    assert error.details().startswith("data.tags[1]:")
    assert status_of(lambda: client.get("notes", "n1")).code() == grpc.StatusCode.NOT_FOUND
    put = client.put("notes", "n1", {"title": "ok", "tags": ["a"]})
    assert put.object.schema_version == 2


def test_unknown_collection_is_not_found(client: Client) -> None:
    error = status_of(lambda: client.put("nonesuch", "x", {"a": 1}))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "nonesuch" in error.details()


def test_reads_return_objects_upgraded_to_the_current_schema_version(
    make_worker: MakeWorker,
) -> None:
    v1 = copy.deepcopy(POLICY)
    v1["collections"] = [
        {
            "name": "notes",
            "schemaVersion": 1,
            "schema": {"type": "object", "required": ["title"]},
        }
    ]
    w = make_worker(v1)
    with ExitStack() as stack:
        client = open_client(w, stack)
        client.put("notes", "old", {"title": "T", "text": "hello"})
        assert client.get("notes", "old").schema_version == 1

        w.write_policy(POLICY)  # version 2: text → body, tags default []
        eventually(lambda: client.get("notes", "old").schema_version == 2, what="policy reload")
        got = client.get("notes", "old")
        assert data(got) == {"title": "T", "body": "hello", "tags": []}
        assert got.version == 1
        listed = client.list("notes").objects
        assert [data(o) for o in listed] == [{"title": "T", "body": "hello", "tags": []}]

        # Still stored at version 1 until the batch upgrade rewrites it.
        with database(w).connect() as conn:
            stored = conn.execute(sa.text("SELECT schema_version FROM objects")).scalar_one()
        assert stored == 1


def test_batch_upgrade_rewrites_stored_objects_a_bounded_number_per_call(
    make_worker: MakeWorker,
) -> None:
    v1 = copy.deepcopy(POLICY)
    v1["collections"] = [{"name": "notes", "schemaVersion": 1}]
    w = make_worker(v1)
    with ExitStack() as stack:
        client = open_client(w, stack)
        for i in range(5):
            client.put("notes", f"n{i}", {"title": f"t{i}", "text": "x"})
        w.stop()
        w.write_policy(POLICY)
        w.start()
        first = client.call("UpgradeObjects", pb.UpgradeObjectsRequest(collection="notes", limit=3))
        assert (first.upgraded, first.more) == (3, True)
        rest = client.call("UpgradeObjects", pb.UpgradeObjectsRequest(collection="notes", limit=3))
        assert (rest.upgraded, rest.more) == (2, False)
        with database(w).connect() as conn:
            rows = conn.execute(sa.text("SELECT schema_version, version FROM objects")).all()
        assert {tuple(r) for r in rows} == {(2, 1)}
        assert data(client.get("notes", "n0")) == {"title": "t0", "body": "x", "tags": []}


def test_object_over_max_object_bytes_is_refused_naming_the_limit(client: Client) -> None:
    error = status_of(lambda: client.put("items", "big", {"blob": "x" * 70_000}))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "maxObjectBytes" in error.details()
    assert status_of(lambda: client.get("items", "big")).code() == grpc.StatusCode.NOT_FOUND


def test_max_objects_quota_counts_the_whole_tenant(make_worker: MakeWorker) -> None:
    policy = {**POLICY, "quotas": {"maxObjects": 3, "maxBytes": "1Mi", "maxObjectBytes": "1Ki"}}
    w = make_worker(policy)
    with ExitStack() as stack:
        alice = open_client(w, stack)
        bob = alice.as_new_user()
        alice.put("items", "a1", {"v": 1})
        alice.put("items", "a2", {"v": 1})
        bob.put("items", "b1", {"v": 1})
        error = status_of(lambda: bob.put("items", "b2", {"v": 1}))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "maxObjects" in error.details()
        assert status_of(lambda: bob.get("items", "b2")).code() == grpc.StatusCode.NOT_FOUND
        bob.put("items", "b1", {"v": 2})  # replacing does not add an object
        alice.delete("items", "a1")
        bob.put("items", "b2", {"v": 1})


def test_per_user_quotas_keep_one_user_from_filling_the_tenant(make_worker: MakeWorker) -> None:
    quotas = {"maxObjects": 100, "maxBytes": "1Mi", "maxObjectBytes": "1Ki"}
    policy = {**POLICY, "quotas": {**quotas, "perUser": {"maxObjects": 2, "maxBytes": 200}}}
    w = make_worker(policy)
    with ExitStack() as stack:
        alice = open_client(w, stack)
        bob = alice.as_new_user()
        alice.put("items", "a1", {"v": 1})
        alice.put("notes", "n1", {"title": "t"})
        error = status_of(lambda: alice.put("items", "a2", {"v": 1}))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "quotas.perUser.maxObjects" in error.details()
        # Another user of the same tenant is not affected ...
        bob.put("items", "b1", {"v": 1})
        bob.put("items", "b2", {"v": 1})
        # ... and bytes count per user too.
        error = status_of(lambda: bob.put("items", "b1", {"s": "y" * 250}))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "quotas.perUser.maxBytes" in error.details()
        # The user can see why, and what to clean up.
        usage = alice.call("GetUsage", pb.GetUsageRequest())
        assert (usage.objects, usage.max_objects, usage.max_bytes) == (2, 2, 200)
        assert [(c.collection, c.objects) for c in usage.collections] == [
            ("items", 1),
            ("notes", 1),
        ]
        assert usage.bytes == sum(c.bytes for c in usage.collections) > 0
        alice.delete("items", "a1")
        alice.put("items", "a2", {"v": 1})
        # Erasing a user frees their share; a new identity starts from zero.
        alice.call("EraseUserData", pb.EraseUserDataRequest(confirm=True))
        fresh = bob.as_new_user()
        assert fresh.call("GetUsage", pb.GetUsageRequest()).objects == 0


def test_usage_without_per_user_limits_reports_none(client: Client) -> None:
    client.put("items", "u1", {"v": 1})
    usage = client.call("GetUsage", pb.GetUsageRequest())
    assert usage.objects == 1 and usage.max_object_bytes == 64 * 1024
    assert not usage.HasField("max_objects") and not usage.HasField("max_bytes")


def test_max_bytes_quota_is_checked_on_growth(make_worker: MakeWorker) -> None:
    policy = {**POLICY, "quotas": {"maxObjects": 100, "maxBytes": 100, "maxObjectBytes": 90}}
    w = make_worker(policy)
    with ExitStack() as stack:
        client = open_client(w, stack)
        client.put("items", "a", {"s": "x" * 40})
        error = status_of(lambda: client.put("items", "b", {"s": "y" * 60}))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "maxBytes" in error.details()
        client.put("items", "a", {"s": "x"})  # shrinking frees bytes
        client.put("items", "b", {"s": "y" * 60})


def _age(w: WorkerProcess, user_id: str, object_id: str, **columns: datetime) -> None:
    """Move an object's clock back: the only way to test time without waiting."""
    sets = ", ".join(f"{name} = :{name}" for name in columns)
    with database(w).begin() as conn:
        conn.execute(
            sa.text(f"UPDATE objects SET {sets} WHERE owner = :u AND object_id = :o"),
            {"u": user_id, "o": object_id, **columns},
        )


def test_expired_object_is_never_returned_even_before_it_is_purged(
    client: Client, worker: WorkerProcess
) -> None:
    put = client.put("items", "ttl", {"v": 1}, ttl_seconds=60)
    assert put.object.HasField("expires_at")
    client.put("items", "keep", {"v": 1})
    _age(worker, client.user_id, "ttl", expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert status_of(lambda: client.get("items", "ttl")).code() == grpc.StatusCode.NOT_FOUND
    assert [o.id for o in client.list("items").objects] == ["keep"]
    assert status_of(lambda: client.delete("items", "ttl")).code() == grpc.StatusCode.NOT_FOUND
    # Writing it again starts a new object.
    again = client.put("items", "ttl", {"v": 2})
    assert again.created and again.object.version == 1


def test_collection_retention_expires_objects_after_their_last_write(
    client: Client, worker: WorkerProcess
) -> None:
    put = client.put("cache", "c1", {"v": 1})
    expires = put.object.expires_at.ToDatetime(tzinfo=UTC)
    assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(days=1)
    _age(worker, client.user_id, "c1", updated_at=datetime.now(UTC) - timedelta(days=2))
    assert status_of(lambda: client.get("cache", "c1")).code() == grpc.StatusCode.NOT_FOUND


def test_purge_deletes_expired_objects_in_bounded_batches_and_audits(
    make_worker: MakeWorker,
) -> None:
    w = make_worker(POLICY)
    with ExitStack() as stack:
        client = open_client(w, stack)
        for i in range(5):
            client.put("items", f"e{i}", {"i": i}, ttl_seconds=30)
        client.put("items", "live", {"i": 9})
        with database(w).begin() as conn:
            conn.execute(
                sa.text("UPDATE objects SET expires_at = :t WHERE object_id LIKE 'e%'"),
                {"t": datetime.now(UTC) - timedelta(minutes=1)},
            )
        first = client.call("PurgeExpired", pb.PurgeExpiredRequest(limit=3))
        assert (first.purged, first.more) == (3, True)
        second = client.call("PurgeExpired", pb.PurgeExpiredRequest(limit=3))
        assert (second.purged, second.more) == (2, False)
        with database(w).connect() as conn:
            left = conn.execute(sa.text("SELECT object_id FROM objects")).scalars().all()
            usage = conn.execute(sa.text("SELECT sum(objects) FROM usage")).scalar_one()
            audits = (
                conn.execute(
                    sa.text("SELECT detail FROM audit_events WHERE action = 'objects.purge'")
                )
                .scalars()
                .all()
            )
        assert left == ["live"] and usage == 1
        assert len(audits) == 2


@pytest.mark.parametrize(
    "policy_change",
    [{"quotas": {"maxObjects": -1}}, {"collections": [{"name": "Bad Name"}]}],
)
def test_invalid_policy_change_is_ignored_and_the_worker_keeps_serving(
    make_worker: MakeWorker, policy_change: dict[str, Any]
) -> None:
    w = make_worker(POLICY)
    with ExitStack() as stack:
        client = open_client(w, stack)
        w.write_policy({**POLICY, **policy_change})
        eventually(lambda: "policy file rejected" in w.logs(), what="bad policy noticed")
        client.put("notes", "still", {"title": "works"})
        assert data(client.get("notes", "still")) == {"title": "works"}


def test_fields_the_schema_does_not_allow_are_refused(client: Client) -> None:
    assert NOTES_SCHEMA["additionalProperties"] is False
    error = status_of(lambda: client.put("notes", "x", {"title": "t", "extra": 1}))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
