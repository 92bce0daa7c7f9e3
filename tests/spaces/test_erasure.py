"""Erasing a user who wrote in shared spaces, under both policies, then looking everywhere."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from stowage.v1 import worker_pb2 as pb
from stowage_testing.worker import WorkerProcess
from tenant_worker.storage._db import sync_url
from tests.spaces.conftest import Member, policy, refusal


def _rows(w: WorkerProcess) -> dict[str, list[str]]:
    """Every row of every table as text (what a direct look into the database sees)."""
    engine = sa.create_engine(sync_url(w.database_url), poolclass=sa.pool.NullPool)
    try:
        tables = sa.inspect(engine).get_table_names()
        with engine.connect() as conn:
            return {
                t: [
                    json.dumps(list(r), default=str)
                    for r in conn.execute(sa.text(f"SELECT * FROM {t}"))
                ]
                for t in tables
            }
    finally:
        engine.dispose()


def _files(w: WorkerProcess) -> bytes:
    """The SQLite database file and its WAL, as bytes (empty on PostgreSQL)."""
    url = sa.engine.make_url(w.database_url)
    if url.get_backend_name() != "sqlite" or not url.database:
        return b""
    db = Path(url.database)
    return b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal")) if p.exists())


@pytest.mark.parametrize("erasure", ["delete", "pseudonymise"])
def test_erasure_leaves_nothing_of_the_user_in_spaces_as_the_policy_says(
    erasure: str, make_worker: Callable[[dict[str, Any]], WorkerProcess]
) -> None:
    w = make_worker(policy(spaces={"erasure": erasure}))
    secret = f"bob-secret-{uuid.uuid4().hex}"
    bob_name, bob_email = f"Bob Secretname {uuid.uuid4().hex[:8]}", f"bob-{uuid.uuid4().hex}@x.test"
    with grpc.insecure_channel(w.address) as ch:
        alice = Member(ch, uuid.uuid4().hex, "Alice")
        bob = Member(ch, f"bob-subject-{uuid.uuid4().hex}", bob_name, bob_email)
        space = alice.create("Family")
        alice.invite(space, bob)
        alice.put(space, "alices", {"items": ["alice only"]})
        alice.put(space, "shared", {"items": ["from alice"]})
        bob.put(space, "bobs", {"items": [secret]})
        bob.put(space, "shared", {"items": ["from alice", secret]}, expected_version=1)
        bobs_space = bob.create("Bob's own")
        bob.invite(bobs_space, alice, role="viewer")
        bob.put(bobs_space, "plan", {"items": [secret]})

        exported = list(
            bob.stub.ExportUserData(
                pb.ExportUserDataRequest(),
                metadata=[("x-stowage-tenant", "acme"), ("x-stowage-user-id", bob.user_id)],
                timeout=30,
            )
        )
        shared = [r.space_object for r in exported if r.WhichOneof("record") == "space_object"]
        assert {(o.space_name, o.object.id) for o in shared} == {
            ("Family", "bobs"),
            ("Family", "shared"),
            ("Bob's own", "plan"),
        }

        erased = bob.call("EraseUserData", pb.EraseUserDataRequest(confirm=True))
        assert erased.identities_deleted == 1

        if erasure == "delete":
            for id in ("bobs", "shared"):
                assert (
                    refusal(lambda id=id: alice.get(space, id)).code() == grpc.StatusCode.NOT_FOUND
                )
            feed = alice.changes(space).changes
            assert sorted((c.id, c.action, c.author.name) for c in feed[-2:]) == [
                ("bobs", "delete", "a former member"),
                ("shared", "delete", "a former member"),
            ]
        else:
            kept = alice.get(space, "shared")
            assert json.loads(kept.object.data_json) == {"items": ["from alice", secret]}
            assert (kept.created_by.name, kept.updated_by.name) == ("Alice", "a former member")
            assert {c.author.name for c in alice.changes(space).changes} == {
                "Alice",
                "a former member",
            }
        assert alice.get(space, "alices").object.version == 1
        detail = alice.call("GetSpace", pb.GetSpaceRequest(space=bobs_space))
        assert [(m.name, m.role) for m in detail.members] == [("Alice", "owner")]

    rows = _rows(w)
    everything = "\n".join(r for t in rows.values() for r in t)
    for trace in (bob.subject, bob_name, bob_email, bob_email.lower()):
        assert trace not in everything
    assert [t for t, rs in rows.items() if any(bob.user_id in r for r in rs)] == ["audit_events"]
    files = _files(w)
    for trace in (bob.subject, bob_name, bob_email):
        assert trace.encode() not in files
    if erasure == "delete":
        assert secret not in everything
        assert secret.encode() not in files
