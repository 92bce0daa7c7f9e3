"""The development signing key and the access tokens signed with it. For local use only.

``stowage dev`` creates the key once under its data directory; ``stowage token``
and the development authorization server sign with it; the demo tenant trusts
the matching public key through the dev issuer's JWKS.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey

from gateway._types import READ_SCOPE, WRITE_SCOPE

#: The scopes the gateway knows, the ones a token gets unless asked for fewer.
DEFAULT_SCOPES = (READ_SCOPE, WRITE_SCOPE)


def load_or_create_key(path: Path) -> RSAKey:
    """The RSA key at ``path``, created (mode 0600) when missing."""
    if path.exists():
        return RSAKey.import_key(json.loads(path.read_text()))
    path.parent.mkdir(parents=True, exist_ok=True)
    key = RSAKey.generate_key(
        2048,
        parameters={"kid": f"dev-{uuid.uuid4().hex[:8]}", "use": "sig", "alg": "RS256"},
        private=True,
    )
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(key.as_dict(private=True), f)
    tmp.replace(path)
    return key


def public_jwks(key: RSAKey) -> dict[str, Any]:
    return {"keys": [key.as_dict(private=False)]}


def sign_token(
    key: RSAKey,
    *,
    issuer: str,
    audience: str,
    subject: str,
    scopes: Iterable[str] = DEFAULT_SCOPES,
    ttl: int = 3600,
    client_id: str = "stowage-cli",
    auth_time: int | None = None,
    session: str | None = None,
) -> str:
    """An RS256 access token for ``audience`` (a tenant's MCP URL), valid for ``ttl`` seconds.

    ``auth_time`` is when the user signed in for the grant (default: now, a token
    minted on its own is a sign-in of its own); ``session`` its ``sid`` (default: a new one).
    """
    body = access_claims(
        issuer=issuer, audience=audience, subject=subject, scopes=scopes, ttl=ttl,
        client_id=client_id, issued=int(time.time()), auth_time=auth_time, session=session,
    )  # fmt: skip
    return jwt.encode({"alg": "RS256", "kid": key.kid}, body, key)


def access_claims(
    *,
    issuer: str,
    audience: str,
    subject: str,
    scopes: Iterable[str],
    ttl: int,
    client_id: str,
    issued: int,
    auth_time: int | None = None,
    session: str | None = None,
) -> dict[str, Any]:
    """The claims of an access token the gateway accepts for ``audience``.

    ``auth_time`` (default ``issued``) and ``sid`` (default a new id) say which
    sign-in the token comes from: a refresh keeps both, which is what lets a
    revocation outlast it.
    """
    return {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl,
        "auth_time": issued if auth_time is None else auth_time,
        "sid": session or uuid.uuid4().hex,
        "scope": " ".join(scopes),
        "client_id": client_id,
        "jti": uuid.uuid4().hex,
    }
