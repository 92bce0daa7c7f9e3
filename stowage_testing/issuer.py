"""A tenant's OAuth issuer for tests: the development authorization server over real HTTP.

Also :func:`sign_token`, which signs tokens with any claims, times and headers
tests need (expired, not yet valid, a foreign ``kid``); the dev platform's own
``sign_token`` mints only well-formed ones.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette

from stowage_dev import DEFAULT_SCOPES, DevAuthServer, load_or_create_key
from stowage_dev._keys import access_claims
from stowage_testing.tools import free_port


def sign_token(
    key: RSAKey,
    *,
    issuer: str,
    audience: str,
    subject: str,
    scopes: Iterable[str] = DEFAULT_SCOPES,
    ttl: int = 3600,
    client_id: str = "stowage-tests",
    now: float | None = None,
    header: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    """An RS256 token with these claims; ``now``, ``header`` and ``claims`` override the usual.

    A claim given as None is left out (``auth_time=None``: a token that says no sign-in time).
    """
    issued = int(now if now is not None else time.time())
    body = access_claims(
        issuer=issuer, audience=audience, subject=subject, scopes=scopes, ttl=ttl,
        client_id=client_id, issued=issued,
    )  # fmt: skip
    body.update(claims)
    body = {name: value for name, value in body.items() if value is not None}
    return jwt.encode({"alg": "RS256", "kid": key.kid, **(header or {})}, body, key)


@contextmanager
def serve_in_thread(
    app: Starlette, port: int, host: str = "127.0.0.1", tls: tuple[Path, Path] | None = None
) -> Iterator[None]:
    """Serve ``app`` over real HTTP on ``host`` (loopback by default) from a background thread.

    ``tls`` is a (certificate, key) pair of PEM files: then it serves HTTPS.

    On asyncio's own loop: uvloop's (uvicorn's choice when it is installed)
    cannot close from a thread that is not the main one.
    """
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, loop="asyncio",
        ssl_certfile=str(tls[0]) if tls else None, ssl_keyfile=str(tls[1]) if tls else None,
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass
class Issuer:
    """The development authorization server, as a tenant's real issuer over HTTP.

    It issues tokens (through its OAuth flow) only for the MCP URLs it was
    told to :meth:`serve`; :meth:`token` signs any token directly.
    """

    server: DevAuthServer
    port: int
    key_file: Path
    resources: set[str]

    @property
    def url(self) -> str:
        return self.server.issuer

    @property
    def key(self) -> RSAKey:
        return self.server.key

    def serve(self, resource: str) -> None:
        """Let the OAuth flow issue tokens for ``resource`` (a tenant's MCP URL)."""
        self.resources.add(resource)

    def token(
        self,
        audience: str,
        subject: str = "alice",
        scopes: tuple[str, ...] = DEFAULT_SCOPES,
        **kw: Any,
    ) -> str:
        return sign_token(
            self.key, issuer=self.url, audience=audience, subject=subject, scopes=scopes, **kw
        )


@contextmanager
def running_issuer(
    tmp: Path, host: str = "127.0.0.1", tls: tuple[Path, Path] | None = None
) -> Iterator[Issuer]:
    """The issuer at ``http://host:port/dev-auth``, on loopback unless ``host`` says otherwise.

    With ``tls`` (certificate and key PEM files, the certificate naming ``host``) it is
    ``https://host:port/dev-auth``.
    """
    port = free_port()
    key_file = tmp / "issuer.jwk.json"
    resources: set[str] = set()
    server = DevAuthServer(
        load_or_create_key(key_file),
        f"{'https' if tls else 'http'}://{host}:{port}/dev-auth",
        resources=resources,
        state_file=tmp / "issuer-state.json",
    )
    with serve_in_thread(Starlette(routes=server.routes()), port, host, tls):
        yield Issuer(server, port, key_file, resources)
