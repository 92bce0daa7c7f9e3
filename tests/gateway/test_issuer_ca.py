"""An issuer behind a private CA: the gateway trusts it when ``--issuer-ca-file`` names the CA.

The development authorization server is served over real HTTPS with a
certificate a CA made in the test signed. The gateway's own HTTP client (built
from its settings, as ``create_app`` builds it) discovers the issuer's keys
with the CA's bundle given, and refuses the issuer without it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from gateway._app import issuer_trust
from gateway._errors import KeysUnavailable
from gateway._settings import GatewaySettings
from gateway.auth._jwks import JwksCache
from stowage_dev import DevAuthServer, load_or_create_key
from stowage_testing.tls import Authority
from stowage_testing.tools import free_port

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def authority() -> Authority:
    return Authority.make("Acme's private issuer CA")


@pytest.fixture(scope="module")
def https_issuer(
    authority: Authority, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DevAuthServer]:
    """The dev authorization server at https://localhost:<port>/dev-auth, the CA's certificate."""
    tmp = tmp_path_factory.mktemp("issuer")
    cert, key = authority.server("localhost")
    (tmp / "tls.crt").write_bytes(cert)
    (tmp / "tls.key").write_bytes(key)
    os.chmod(tmp / "tls.key", 0o600)
    port = free_port()
    server = DevAuthServer(
        load_or_create_key(tmp / "issuer.jwk.json"),
        f"https://localhost:{port}/dev-auth",
        resources=set(),
        state_file=tmp / "state.json",
    )
    config = uvicorn.Config(
        Starlette(routes=server.routes()),
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        loop="asyncio",
        ssl_certfile=str(tmp / "tls.crt"),
        ssl_keyfile=str(tmp / "tls.key"),
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not running.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the issuer did not start"
        time.sleep(0.02)
    try:
        yield server
    finally:
        running.should_exit = True
        thread.join(timeout=10)


def gateway_http(environ: dict[str, str]) -> httpx.AsyncClient:
    """The client the gateway talks to issuers with, from its settings as the chart sets them."""
    settings = GatewaySettings.from_env(environ)
    return httpx.AsyncClient(verify=issuer_trust(settings.issuer_ca_file))


async def test_the_gateway_trusts_an_issuer_signed_by_the_ca_it_is_given(
    https_issuer: DevAuthServer, authority: Authority, tmp_path: Path
) -> None:
    bundle = tmp_path / "ca.crt"
    bundle.write_text(authority.pem)
    async with gateway_http({"STOWAGE_GATEWAY_ISSUER_CA_FILE": str(bundle)}) as http:
        found = await JwksCache(http, min_refresh_interval=60).key(
            https_issuer.issuer, None, https_issuer.key.kid
        )
    assert found is not None and found.kid == https_issuer.key.kid


async def test_without_the_ca_the_issuer_is_not_trusted(https_issuer: DevAuthServer) -> None:
    async with gateway_http({}) as http:
        with pytest.raises(KeysUnavailable, match="no usable discovery document"):
            await JwksCache(http, min_refresh_interval=60).key(
                https_issuer.issuer, None, https_issuer.key.kid
            )
        # ... because the certificate does not verify.
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await http.get(https_issuer.issuer)


def test_a_private_ca_is_trusted_besides_the_public_roots_not_instead(
    authority: Authority, tmp_path: Path
) -> None:
    bundle = tmp_path / "ca.crt"
    bundle.write_text(authority.pem)
    public = issuer_trust(None)
    assert public is True  # httpx's default: the public roots
    both = issuer_trust(bundle)
    assert not isinstance(both, bool)
    roots = {c["subject"] for c in both.get_ca_certs()}
    assert ((("commonName", "Acme's private issuer CA"),),) in roots
    assert len(roots) > 50, "the public roots are still there"
