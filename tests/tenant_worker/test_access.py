"""Revocations: recorded by the worker (with an audit row), listed in order, never identifying."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import grpc
import sqlalchemy as sa
from google.protobuf.timestamp_pb2 import Timestamp

from stowage.v1 import worker_pb2 as pb
from stowage.wire import identity_digest
from stowage_testing.worker import WorkerProcess
from tests.tenant_worker.conftest import Client, database, status_of


def _all(client: Client) -> list[pb.Revocation]:
    found: list[pb.Revocation] = []
    more = True
    while more:
        after = found[-1].id if found else 0
        reply = client.call("ListRevocations", pb.ListRevocationsRequest(after_id=after, limit=2))
        found += reply.revocations
        more = reply.more
    return found


def test_a_user_revokes_their_own_identity_and_erasure_leaves_no_identity_behind(
    client: Client, worker: WorkerProcess
) -> None:
    subject = uuid.uuid4().hex
    resolved = client.stub.ResolveUser(
        pb.ResolveUserRequest(issuer="https://issuer.test/", subject=subject),
        metadata=[("x-stowage-tenant", "acme")],
    )
    user = Client(client.channel, resolved.user_id)
    before = datetime.now(UTC)
    revocation = user.call("RevokeAccess", pb.RevokeAccessRequest(requested_by="user"))
    assert revocation.identity == identity_digest("https://issuer.test/", subject)
    assert not revocation.all_identities
    assert before - timedelta(seconds=1) <= revocation.revoked_before.ToDatetime(UTC)
    assert revocation.id in [r.id for r in _all(user)]

    user.call("EraseUserData", pb.EraseUserDataRequest(confirm=True))
    with database(worker).connect() as conn:
        row = conn.execute(
            sa.text("SELECT * FROM access_revocations WHERE id = :id"), {"id": revocation.id}
        ).one()
        audit = conn.execute(
            sa.text(
                "SELECT detail FROM audit_events WHERE action = 'access.revoke' "
                "AND correlation_id = :cid"
            ),
            {"cid": row.correlation_id},
        ).one()
    assert subject not in str(tuple(row)) and row.requested_by == "user"
    detail = json.loads(audit.detail) if isinstance(audit.detail, str) else audit.detail
    assert detail["revocation"] == revocation.id and detail["requested_by"] == "user"


def test_revocations_are_listed_in_the_order_recorded_and_mistakes_are_refused(
    client: Client,
) -> None:
    first = client.call(
        "RevokeAccess",
        pb.RevokeAccessRequest(issuer="https://issuer.test/", subject="s1", reason="test"),
    )
    everyone = client.call("RevokeAccess", pb.RevokeAccessRequest(all_identities=True))
    assert everyone.all_identities and everyone.identity == ""
    ids = [r.id for r in _all(client)]
    assert ids == sorted(ids) and ids.index(first.id) < ids.index(everyone.id)

    future = Timestamp()
    future.FromDatetime(datetime.now(UTC) + timedelta(hours=1))
    refused = [
        pb.RevokeAccessRequest(all_identities=True, revoked_before=future),
        pb.RevokeAccessRequest(issuer="https://issuer.test/"),
        pb.RevokeAccessRequest(all_identities=True, subject="s1"),
        pb.RevokeAccessRequest(requested_by="someone"),
    ]
    for request in refused:
        assert status_of(lambda r=request: client.call("RevokeAccess", r)).code() == (
            grpc.StatusCode.INVALID_ARGUMENT
        )
    anonymous = Client(client.channel)
    assert status_of(lambda: anonymous.call("RevokeAccess", pb.RevokeAccessRequest())).code() == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    other_tenant = Client(client.channel, tenant="globex")
    listing = pb.ListRevocationsRequest()
    assert status_of(lambda: other_tenant.call("ListRevocations", listing)).code() == (
        grpc.StatusCode.PERMISSION_DENIED
    )
