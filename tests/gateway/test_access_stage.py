"""A tenant at stage Internal admits only its testers; moving to GA is one field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stowage_testing.gateway import GatewayProcess, Issuer, post, rpc, running_gateway, tenant_entry
from stowage_testing.tools import eventually
from tests.gateway.conftest import WorkerFor

pytestmark = pytest.mark.postgres

INTERNAL = {
    "stage": "Internal",
    "allowSubjects": ["tess-the-tester"],
    "allowEmailDomains": ["acme.example"],
}


def test_an_internal_tenant_admits_its_testers_refuses_others_with_403_and_opens_with_one_field(
    worker_for: WorkerFor, issuer: Issuer, tmp_path: Path
) -> None:
    g = GatewayProcess(workdir=tmp_path)
    entry: dict[str, Any] = tenant_entry(
        "prelaunch", g, issuer, worker_for("prelaunch").address, access=INTERNAL
    )
    with running_gateway(tmp_path, [entry], port=g.port):
        url = g.url("prelaunch")

        def status(subject: str, **claims: Any) -> int:
            return post(
                url, rpc("tools/list"), issuer.token(url, subject=subject, **claims)
            ).status_code

        assert status("tess-the-tester") == 200
        assert status("dave", email="dave@acme.example") == 200
        assert status("dana", email="Dana@ACME.example", email_verified=True) == 200

        refused = post(
            url, rpc("tools/list"), issuer.token(url, "erin", email="erin@other.example")
        )
        assert refused.status_code == 403
        assert refused.json() == {
            "error": "access_denied",
            "error_description": "this app is not open yet",
        }
        challenge = refused.headers["www-authenticate"]
        assert 'error="access_denied"' in challenge and "not open yet" in challenge
        # An unverified email, a subdomain, or no email at all is not a tester's.
        assert status("mallory", email="mallory@acme.example", email_verified=False) == 403
        assert status("sub", email="sam@eu.acme.example") == 403
        assert status("nobody") == 403
        call = rpc("tools/call", {"name": "items_list", "arguments": {}})
        assert post(url, call, issuer.token(url, "erin")).status_code == 403

        g.write_tenants([{**entry, "access": {**INTERNAL, "stage": "GeneralAvailability"}}])
        eventually(lambda: status("erin") == 200, what="the tenant opens to everyone")
        assert status("tess-the-tester") == 200
