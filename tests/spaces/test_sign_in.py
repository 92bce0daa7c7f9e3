"""What a sign-in does (email invitations, organisation spaces) and what support may see."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import grpc
import pytest

from stowage.v1 import worker_pb2 as pb
from stowage.v1 import worker_pb2_grpc
from stowage_testing.worker import WorkerProcess, running_worker
from tests.spaces.conftest import Member, policy, refusal

POLICY = policy(
    identity={
        "nameClaim": "name",
        "emailClaim": "email",
        "inviteByEmail": True,
        "orgClaim": "org",
        "orgSpaces": True,
    }
)


@pytest.fixture(scope="module")
def worker(
    new_database_url: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    with running_worker(new_database_url(), tmp_path_factory.mktemp("worker"), POLICY) as w:
        yield w


def _email(who: str) -> str:
    return f"{who}.{uuid.uuid4().hex[:12]}@example.test"


def test_an_email_invitation_waits_for_a_sign_in_with_that_email_and_gives_its_role(
    member: Callable[..., Member],
) -> None:
    alice = member("Alice", _email("alice"))
    space = alice.create("Book club")
    carols = _email("carol")
    waiting = alice.call(
        "InviteMember", pb.InviteMemberRequest(space=space, email=carols, role="viewer")
    )
    assert waiting.pending and not waiting.HasField("member")
    assert alice.call("GetSpace", pb.GetSpaceRequest(space=space)).pending_invites == 1

    dave = member("Dave", _email("dave"))
    assert space not in dave.spaces()
    carol = member("Carol", f"  {carols.upper()} ")  # as her issuer spells it
    assert carol.spaces()[space].role == "viewer"
    carol.sign_in("Carol", carols)  # a second sign-in accepts nothing twice
    detail = alice.call("GetSpace", pb.GetSpaceRequest(space=space))
    assert detail.pending_invites == 0
    assert sorted((m.name, m.role) for m in detail.members) == [
        ("Alice", "owner"),
        ("Carol", "viewer"),
    ]

    # Someone who signed in with that email already joins at once.
    daves = _email("dave")
    dave.sign_in("Dave", daves)
    joined = alice.call("InviteMember", pb.InviteMemberRequest(space=space, email=daves))
    assert (joined.pending, joined.member.name, joined.member.role) == (False, "Dave", "editor")


def test_a_sign_in_without_the_invited_email_accepts_nothing(
    member: Callable[..., Member],
) -> None:
    alice = member("Alice", _email("alice"))
    space = alice.create("Private")
    erins = _email("erin")
    alice.call("InviteMember", pb.InviteMemberRequest(space=space, email=erins))
    erin = member("Erin")  # her token carried no (verified) email
    assert space not in erin.spaces()
    erin.sign_in("Erin", erins)  # the next token carries it
    assert erin.spaces()[space].role == "editor"


def test_users_of_one_organisation_share_its_space_without_an_invitation(
    member: Callable[..., Member],
) -> None:
    org = f"Acme {uuid.uuid4().hex[:8]}"
    first = member("First", org=org)
    (org_space,) = [s for s in first.spaces().values() if s.kind == "org"]
    assert (org_space.name, org_space.role) == (org, "owner")
    colleague = member("Colleague", org=org.upper())
    assert colleague.spaces()[org_space.id].role == "editor"
    colleague.put(org_space.id, "roadmap", {"items": ["ship"]})
    assert first.get(org_space.id, "roadmap").updated_by.name == "Colleague"

    colleague.sign_in("Colleague", org=org)  # signing in again joins nothing twice
    assert [s.kind for s in colleague.spaces().values()] == ["org"]
    assert first.spaces()[org_space.id].members == 2

    outsider = member("Outsider", org=f"Other {uuid.uuid4().hex[:8]}")
    assert org_space.id not in outsider.spaces()
    denied = refusal(lambda: outsider.get(org_space.id, "roadmap"))
    assert denied.code() == grpc.StatusCode.NOT_FOUND
    nobody = member("No org")
    assert nobody.spaces() == {}


def _support_listing(channel: grpc.Channel, limit: int) -> tuple[list[pb.TenantSpace], int]:
    """Every space through ListTenantSpaces, ``limit`` a page; and how many pages it took."""
    stub = worker_pb2_grpc.TenantWorkerStub(channel)
    found: list[pb.TenantSpace] = []
    after, pages, more = "", 0, True
    while more:
        page = stub.ListTenantSpaces(
            pb.ListTenantSpacesRequest(after_id=after, limit=limit),
            metadata=[("x-stowage-tenant", "acme")],
            timeout=15,
        )
        pages += 1
        found.extend(page.spaces)
        more = page.more
        if page.spaces:
            after = page.spaces[-1].space.id
        assert pages < 1000
    return found, pages


def test_support_lists_spaces_members_roles_and_sizes_but_no_names_or_contents(
    member: Callable[..., Member], channel: grpc.Channel
) -> None:
    secret = f"secret-{uuid.uuid4().hex}"
    name = f"Surprise party {uuid.uuid4().hex[:8]}"
    alice, bob = member(f"Alice {secret[:12]}"), member("Bob")
    space = alice.create(name)
    alice.invite(space, bob, role="viewer")
    alice.put(space, "plan", {"items": [secret]})
    other = bob.create("Second")

    listed, pages = _support_listing(channel, limit=1)
    ids = [s.space.id for s in listed]
    assert len(ids) == len(set(ids)) == pages  # one a page, each once
    assert ids == sorted(ids) and {space, other} <= set(ids)
    ours = next(s for s in listed if s.space.id == space)
    assert (ours.space.name, ours.space.role, ours.space.members) == ("", "", 2)
    assert ours.space.objects == 1 and ours.space.bytes > len(secret)
    handles = {
        m.member: m.role for m in alice.call("GetSpace", pb.GetSpaceRequest(space=space)).members
    }
    assert {m.member: m.role for m in ours.members} == handles
    assert all(m.name == "" for m in ours.members)
    raw = b"".join(s.SerializeToString() for s in listed)
    for words in (secret, name, "Alice", "Bob", alice.subject, alice.user_id):
        assert words.encode() not in raw

    wrong = worker_pb2_grpc.TenantWorkerStub(channel)
    denied = refusal(
        lambda: wrong.ListTenantSpaces(
            pb.ListTenantSpacesRequest(), metadata=[("x-stowage-tenant", "other")], timeout=15
        )
    )
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
