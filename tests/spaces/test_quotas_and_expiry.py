"""A space counts against its owner's quota; retention and TTL purge shared objects too."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta

import grpc
import pytest
import sqlalchemy as sa

from stowage.v1 import worker_pb2 as pb
from stowage.v1 import worker_pb2_grpc
from stowage_testing.worker import WorkerProcess, running_worker
from tenant_worker.storage._db import sync_url
from tenant_worker.storage._models import SpaceObject, utcnow
from tests.spaces.conftest import Member, policy, refusal

PER_USER = 3
POLICY = policy(
    collections=[
        {"name": "lists", "shared": True},
        {"name": "scratch", "shared": True},
        {"name": "items"},
    ],
    retention={"collections": {"scratch": 1}},
    quotas={"perUser": {"maxObjects": PER_USER}},
)


@pytest.fixture(scope="module")
def worker(
    new_database_url: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    with running_worker(new_database_url(), tmp_path_factory.mktemp("worker"), POLICY) as w:
        yield w


def _personal(m: Member, id: str) -> pb.PutObjectResponse:
    req = pb.PutObjectRequest(collection="items", id=id, data_json=b'{"n": 1}')
    return m.call("PutObject", req)


def _usage(m: Member) -> int:
    return int(m.call("GetUsage", pb.GetUsageRequest()).objects)


def test_a_space_counts_against_its_owners_per_user_quota_not_its_editors(
    member: Callable[..., Member],
) -> None:
    alice, bob = member("Alice"), member("Bob")
    space = alice.create("Shared")
    alice.invite(space, bob)
    for i in range(PER_USER):
        bob.put(space, f"bobs-{i}", {"items": [i]})  # in alice's space: alice's quota
    full = refusal(lambda: _personal(alice, "mine"))
    assert full.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "the limit per user is 3" in full.details()
    assert "this user stores 3 objects" in full.details()
    over = refusal(lambda: bob.put(space, "one-more", {"items": []}))
    assert over.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # Bob is told whose quota it is: the space's owner's, not his own (he stores none yet).
    assert "the space's owner stores 3 objects" in over.details()
    for i in range(PER_USER - 1):
        _personal(bob, f"bobs-own-{i}")  # bob's own quota is untouched by the space
    assert alice.call("GetSpace", pb.GetSpaceRequest(space=space)).space.objects == PER_USER

    # Alice leaves: bob owns the space now, and it counts against his quota instead.
    alice.call("LeaveSpace", pb.LeaveSpaceRequest(space=space))
    assert bob.spaces()[space].role == "owner"
    assert _personal(alice, "mine").object.version == 1
    moved = refusal(lambda: _personal(bob, "bobs-own-last"))
    assert moved.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    for i in range(PER_USER):
        bob.call(
            "DeleteSpaceObject",
            pb.DeleteSpaceObjectRequest(space=space, collection="lists", id=f"bobs-{i}"),
        )
    assert _personal(bob, "bobs-own-last").object.version == 1


def _age(w: WorkerProcess, space: str, object_id: str, **times: object) -> None:
    """Move an object's times into the past, as if the days had gone by."""
    engine = sa.create_engine(sync_url(w.database_url), poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.update(SpaceObject)
                .where(SpaceObject.space_id == space, SpaceObject.object_id == object_id)
                .values(**times)
            )
    finally:
        engine.dispose()


def test_shared_objects_past_their_ttl_or_retention_are_purged_and_the_feed_says_so(
    member: Callable[..., Member], worker: WorkerProcess, channel: grpc.Channel
) -> None:
    alice = member("Alice")
    space = alice.create("Short-lived")
    alice.put(space, "keep", {"items": ["stays"]})
    alice.put(space, "ttl", {"items": ["an hour"]}, ttl_seconds=3600)
    old = pb.PutSpaceObjectRequest(space=space, collection="scratch", id="old", data_json=b"{}")
    alice.call("PutSpaceObject", old)
    now = utcnow()
    _age(worker, space, "ttl", expires_at=now - timedelta(minutes=1))
    _age(worker, space, "old", updated_at=now - timedelta(days=2))

    assert refusal(lambda: alice.get(space, "ttl")).code() == grpc.StatusCode.NOT_FOUND
    before = alice.call("GetSpace", pb.GetSpaceRequest(space=space)).space
    assert before.objects == PER_USER  # expired, not yet purged: still counted
    assert refusal(lambda: _personal(alice, "later")).code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    stub = worker_pb2_grpc.TenantWorkerStub(channel)
    purged = stub.PurgeExpired(
        pb.PurgeExpiredRequest(), metadata=[("x-stowage-tenant", "acme")], timeout=30
    )
    assert purged.purged == 2

    after = alice.call("GetSpace", pb.GetSpaceRequest(space=space)).space
    assert (after.objects, after.last_change) == (1, 5)
    assert 0 < after.bytes < before.bytes
    feed = alice.changes(space).changes
    assert sorted((c.collection, c.id, c.action, c.author.name) for c in feed[-2:]) == [
        ("lists", "ttl", "expire", "expiry (retention or TTL)"),
        ("scratch", "old", "expire", "expiry (retention or TTL)"),
    ]
    listed = alice.call(
        "ListSpaceObjects", pb.ListSpaceObjectsRequest(space=space, collection="lists")
    )
    assert [(o.object.id, json.loads(o.object.data_json)) for o in listed.objects] == [
        ("keep", {"items": ["stays"]})
    ]
    assert _personal(alice, "later").object.version == 1  # the purge freed her quota
