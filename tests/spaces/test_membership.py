"""The worker is the authority on who may read and write a space."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import grpc

from stowage.v1 import worker_pb2 as pb
from tests.spaces.conftest import Member, current_of, refusal, role_needed


def test_a_non_member_calling_the_worker_directly_sees_not_found_like_a_missing_space(
    member: Callable[..., Member],
) -> None:
    alice, mallory = member("Alice"), member("Mallory")
    space = alice.create()
    alice.put(space, "groceries", {"items": ["milk"]})
    missing = uuid.uuid4().hex
    attempts = {
        "get": lambda s: mallory.get(s, "groceries"),
        "put": lambda s: mallory.put(s, "groceries", {"items": ["stolen"]}),
        "list": lambda s: mallory.call(
            "ListSpaceObjects", pb.ListSpaceObjectsRequest(space=s, collection="lists")
        ),
        "space": lambda s: mallory.call("GetSpace", pb.GetSpaceRequest(space=s)),
        "feed": lambda s: mallory.changes(s),
        "delete": lambda s: mallory.call(
            "DeleteSpaceObject",
            pb.DeleteSpaceObjectRequest(space=s, collection="lists", id="groceries"),
        ),
        "invite": lambda s: mallory.invite(s, mallory),
    }
    for name, attempt in attempts.items():
        real = refusal(lambda a=attempt: a(space))
        fake = refusal(lambda a=attempt: a(missing))
        assert real.code() == fake.code() == grpc.StatusCode.NOT_FOUND, name
        assert real.details().replace(space, "S") == fake.details().replace(missing, "S"), name
    assert alice.get(space, "groceries").object.version == 1
    assert space not in [s.id for s in mallory.call("ListSpaces", pb.ListSpacesRequest()).spaces]


def test_a_viewer_reads_but_saving_needs_the_editor_role(member: Callable[..., Member]) -> None:
    alice, bob = member("Alice"), member("Bob")
    space = alice.create()
    alice.put(space, "groceries", {"items": ["milk"]})
    alice.invite(space, bob, role="viewer")
    assert bob.get(space, "groceries").updated_by.name == "Alice"
    denied = refusal(lambda: bob.put(space, "groceries", {"items": []}))
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    assert role_needed(denied) == "editor"
    assert "needs the editor role" in denied.details()
    assert role_needed(refusal(lambda: bob.invite(space, member()))) == "owner"
    handle = bob.handle(space)
    alice.call("SetMemberRole", pb.SetMemberRoleRequest(space=space, member=handle, role="editor"))
    assert bob.put(space, "groceries", {"items": ["milk", "eggs"]}, expected_version=1)
    alice.call("RemoveMember", pb.RemoveMemberRequest(space=space, member=handle))
    assert refusal(lambda: bob.get(space, "groceries")).code() == grpc.StatusCode.NOT_FOUND


def test_a_stale_save_names_who_changed_the_object_and_when(member: Callable[..., Member]) -> None:
    alice, bob = member("Alice"), member("Bob")
    space = alice.create()
    alice.invite(space, bob)
    alice.put(space, "groceries", {"items": ["milk"]})
    bob.put(space, "groceries", {"items": ["milk", "eggs"]}, expected_version=1)
    stale = refusal(lambda: alice.put(space, "groceries", {"items": []}, expected_version=1))
    assert stale.code() == grpc.StatusCode.ABORTED
    current = current_of(stale)
    assert current.object.version == 2
    assert current.updated_by.name == "Bob"
    assert current.updated_by.member == bob.handle(space)
    assert stale.details().startswith("Bob changed lists/groceries at ")


def test_an_idempotent_replay_in_a_space_writes_once(member: Callable[..., Member]) -> None:
    alice = member("Alice")
    space = alice.create()
    first = alice.put(space, "todo", {"items": [1]}, idempotency_key="k-1")
    again = alice.put(space, "todo", {"items": [1]}, idempotency_key="k-1")
    assert (first.replayed, again.replayed) == (False, True)
    assert again.object.object.version == first.object.object.version == 1
    assert [c.seq for c in alice.changes(space).changes] == [1]


def test_a_personal_tool_cannot_reach_a_shared_collection(member: Callable[..., Member]) -> None:
    alice = member("Alice")
    refused = refusal(
        lambda: alice.call(
            "PutObject", pb.PutObjectRequest(collection="lists", id="x", data_json=b"{}")
        )
    )
    assert refused.code() in (grpc.StatusCode.INVALID_ARGUMENT,)
