"""A save in a space decides as the transaction did, whether it is one statement or several."""

from __future__ import annotations

import hashlib
import hmac
import os
import uuid
from collections.abc import Callable
from typing import Any

import grpc

from stowage.v1 import worker_pb2 as pb
from stowage_testing.worker import WorkerProcess
from tenant_worker.spaces._access import Handles
from tests.spaces.conftest import Member, current_of, policy, refusal, role_needed


def test_the_padded_keys_give_the_same_handle_as_the_hmac() -> None:
    for key in (os.urandom(32), os.urandom(64), os.urandom(100)):
        inner, outer = Handles.pads(key)
        message = b"member\x00" + b"0123abcd"
        digest = hashlib.sha256(outer + hashlib.sha256(inner + message).digest()).hexdigest()
        assert digest == hmac.new(key, message, hashlib.sha256).hexdigest()
        assert Handles.of(key, "0123abcd") == "m-" + digest[:16]


def test_a_replayed_save_of_another_members_object_answers_as_the_first_time(
    member: Callable[..., Member],
) -> None:
    alice, bob = member("Alice"), member("Bob")
    space = alice.create()
    alice.invite(space, bob)
    alice.put(space, "card", {"items": ["from alice"]})
    key = f"k-{uuid.uuid4().hex}"
    first = bob.put(space, "card", {"items": ["from bob"]}, expected_version=1, idempotency_key=key)
    again = bob.put(space, "card", {"items": ["from bob"]}, expected_version=1, idempotency_key=key)
    assert (first.replayed, again.replayed) == (False, True)
    assert again.object == first.object
    assert first.object.created_by.member == alice.handle(space)
    assert (first.object.created_by.name, first.object.updated_by.name) == ("Alice", "Bob")
    assert first.object.updated_by.member == bob.handle(space)
    assert bob.get(space, "card") == first.object
    assert [c.version for c in alice.changes(space).changes] == [1, 2]


def test_expected_version_zero_creates_only_and_a_missing_object_has_no_version(
    member: Callable[..., Member],
) -> None:
    alice = member("Alice")
    space = alice.create()
    assert alice.put(space, "new", {"items": []}, expected_version=0).created
    taken = refusal(lambda: alice.put(space, "new", {"items": [1]}, expected_version=0))
    assert taken.code() == grpc.StatusCode.ABORTED
    assert "not 0 (create only)" in taken.details()
    missing = refusal(lambda: alice.put(space, "missing", {"items": []}, expected_version=3))
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    assert [c.id for c in alice.changes(space).changes] == ["new"]


def test_a_replay_names_an_erased_creator_as_a_former_member(
    make_worker: Callable[[dict[str, Any]], WorkerProcess],
) -> None:
    w = make_worker(policy(spaces={"erasure": "pseudonymise"}))
    with grpc.insecure_channel(w.address) as ch:
        alice, bob = Member(ch, uuid.uuid4().hex, "Alice"), Member(ch, uuid.uuid4().hex, "Bob")
        space = alice.create()
        alice.invite(space, bob)
        alice.put(space, "card", {"items": ["from alice"]})
        alice.call("EraseUserData", pb.EraseUserDataRequest(confirm=True))
        key = f"k-{uuid.uuid4().hex}"
        first = bob.put(space, "card", {"items": ["bob"]}, idempotency_key=key)
        again = bob.put(space, "card", {"items": ["bob"]}, idempotency_key=key)
    assert again.replayed and again.object == first.object
    assert first.object.created_by.name == "a former member"
    assert first.object.created_by.member.startswith("~")
    assert first.object.object.version == 2


def test_a_delete_in_a_space_checks_role_and_version_names_the_editor_and_replays(
    member: Callable[..., Member],
) -> None:
    alice, bob, carol = member("Alice"), member("Bob"), member("Carol")
    space = alice.create()
    alice.invite(space, bob)
    alice.invite(space, carol, role="viewer")
    alice.put(space, "card", {"items": ["a"]})
    bob.put(space, "card", {"items": ["b"]}, expected_version=1)

    def delete(m: Member, **kw: Any) -> pb.DeleteObjectResponse:
        req = pb.DeleteSpaceObjectRequest(space=space, collection="lists", id="card", **kw)
        response: pb.DeleteObjectResponse = m.call("DeleteSpaceObject", req)
        return response

    denied = refusal(lambda: delete(carol))
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    assert role_needed(denied) == "editor"
    stale = refusal(lambda: delete(alice, expected_version=1))
    assert stale.code() == grpc.StatusCode.ABORTED
    assert current_of(stale).updated_by.name == "Bob"
    assert stale.details().startswith("Bob changed lists/card at ")
    key = f"k-{uuid.uuid4().hex}"
    first = delete(alice, expected_version=2, idempotency_key=key)
    again = delete(alice, expected_version=2, idempotency_key=key)
    assert (first.version, first.replayed, again.version, again.replayed) == (2, False, 2, True)
    assert refusal(lambda: delete(alice)).code() == grpc.StatusCode.NOT_FOUND
    feed = alice.changes(space).changes
    assert [(c.seq, c.action, c.version) for c in feed] == [
        (1, "put", 1),
        (2, "put", 2),
        (3, "delete", 2),
    ]
    size = alice.call("GetSpace", pb.GetSpaceRequest(space=space)).space
    assert (size.objects, size.bytes) == (0, 0)
