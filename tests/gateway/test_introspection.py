"""Opaque tokens: a tenant that names an introspection endpoint (RFC 7662) is served.

The endpoint is a small real one over HTTP, answering as an authorization
server would (inactive once a token has expired) and counting what it is asked.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from stowage_testing.gateway import GatewayProcess, Issuer, post, rpc, running_gateway, tenant_entry
from stowage_testing.issuer import serve_in_thread
from stowage_testing.tools import free_port
from tests.gateway.conftest import WorkerFor

pytestmark = pytest.mark.postgres

CLIENT_ID, SECRET = "stowage-gateway", "s3cret-1"


class IntrospectionEndpoint:
    def __init__(self) -> None:
        self.tokens: dict[str, dict[str, Any]] = {}
        self.asked: Counter[str] = Counter()
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/introspect"

    def issue(self, **claims: Any) -> str:
        token = f"opaque-{uuid.uuid4().hex}"
        self.tokens[token] = {"iat": int(time.time()), **claims}
        return token

    async def introspect(self, request: Request) -> Response:
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
        if request.headers.get("authorization") != expected:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        token = str((await request.form()).get("token", ""))
        self.asked[token] += 1
        claims = self.tokens.get(token)
        if claims is None or claims.get("exp", float("inf")) <= time.time():
            return JSONResponse({"active": False})
        return JSONResponse({"active": True, **claims})

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/introspect", self.introspect, methods=["POST"])])


def test_opaque_tokens_are_introspected_cached_within_their_lifetime_and_refused_when_inactive(
    worker_for: WorkerFor, issuer: Issuer, tmp_path: Path
) -> None:
    endpoint = IntrospectionEndpoint()
    secrets = tmp_path / "secrets"
    (secrets / "introspection").mkdir(parents=True)
    (secrets / "introspection" / "client-secret").write_text(SECRET + "\n")
    g = GatewayProcess(
        workdir=tmp_path / "g",
        extra_args=("--secrets-dir", str(secrets), "--introspection-cache-seconds", "30"),
    )
    entry = tenant_entry("opaque", g, issuer, worker_for("opaque").address)
    entry["auth"]["introspection"] = {
        "endpoint": endpoint.url,
        "clientId": CLIENT_ID,
        "clientSecretRef": {"name": "introspection", "key": "client-secret"},
    }
    url = g.url("opaque")
    claims = {"iss": issuer.url, "aud": url, "scope": "stowage:read stowage:write"}
    save = rpc("tools/call", {"name": "items_save", "arguments": {"data": {"x": 1}}})
    with (
        serve_in_thread(endpoint.app(), endpoint.port),
        running_gateway(g.workdir, [entry], port=g.port, extra_args=g.extra_args),
    ):
        active = endpoint.issue(sub="olga", exp=time.time() + 600, **claims)
        saved = post(url, save, active)
        assert saved.status_code == 200, saved.text
        assert saved.json()["result"]["structuredContent"]["created"] is True
        assert post(url, rpc("tools/list"), active).status_code == 200
        assert endpoint.asked[active] == 1  # the second request was answered from the cache

        inactive = endpoint.issue(sub="ivan", exp=time.time() - 5, **claims)
        for _ in range(2):
            refused = post(url, rpc("tools/list"), inactive)
            assert refused.status_code == 401
            assert "not active" in refused.json()["error_description"]
        assert endpoint.asked[inactive] == 1  # a refusal is remembered too

        # Cached no longer than the token lives: after its exp, the endpoint is asked again.
        short = endpoint.issue(sub="sven", exp=time.time() + 2, **claims)
        assert post(url, rpc("tools/list"), short).status_code == 200
        deadline = time.monotonic() + 15
        while post(url, rpc("tools/list"), short).status_code == 200:
            assert time.monotonic() < deadline, "an expired opaque token is still accepted"
        assert endpoint.asked[short] == 2

        other_audience = endpoint.issue(sub="otto", exp=time.time() + 600, **{**claims, "aud": "x"})
        assert post(url, rpc("tools/list"), other_audience).status_code == 401

        # The secret is read at each request: a wrong one means no token can be checked.
        (secrets / "introspection" / "client-secret").write_text("rotated-wrong")
        unchecked = endpoint.issue(sub="uma", exp=time.time() + 600, **claims)
        refused = post(url, rpc("tools/list"), unchecked)
        assert refused.status_code == 401
        assert "cannot be checked" in refused.json()["error_description"]

        # JWTs of the same issuer are still verified against its keys.
        assert post(url, rpc("tools/list"), issuer.token(url, subject="jay")).status_code == 200
