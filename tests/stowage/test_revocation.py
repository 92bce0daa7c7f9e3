"""The revocation request: what the gateway sends is what the worker reads."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

from stowage.revocation import OPERATOR, USER, RevocationRequest
from stowage.v1 import worker_pb2 as pb
from tenant_worker.rpc._servicer import _revocation_request


def test_a_revocation_request_reads_back_as_it_was_sent() -> None:
    for sent in (
        RevocationRequest(
            issuer="https://login.acme.example/",
            subject="248289761001",
            revoked_before=datetime(2026, 11, 23, 9, 30, 0, 250_000, tzinfo=UTC),
            reason="INC-42",
        ),
        RevocationRequest(all_identities=True),
        RevocationRequest(requested_by=USER),
    ):
        # As gateway.forwarding._worker.WorkerClient.revoke_access builds the message.
        assert _revocation_request(pb.RevokeAccessRequest(**asdict(sent))) == sent


def test_an_empty_request_reads_as_an_operators_revocation_of_now() -> None:
    read = _revocation_request(pb.RevokeAccessRequest())
    assert read == RevocationRequest()
    assert (read.requested_by, read.revoked_before) == (OPERATOR, None)
