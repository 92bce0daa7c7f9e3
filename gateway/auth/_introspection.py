"""RFC 7662 token introspection over HTTP, for tenants whose issuer hands out opaque tokens.

The adapter asks the tenant's introspection endpoint about one token and
returns the response's claims; it knows nothing of what makes a token
acceptable (that is :mod:`gateway.auth._auth`'s job) and caches nothing (the token
verifier does, within bounds). The client authenticates with HTTP Basic when
the tenant names a client secret, read from ``<secrets dir>/<name>/<key>``
(a mounted Secret) at each request, so a rotated secret is used at once.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx

from gateway._errors import IntrospectionUnavailable
from gateway._types import AuthConfig

log = logging.getLogger(__name__)


class Introspector:
    def __init__(
        self, http: httpx.AsyncClient, *, secrets_dir: Path | None, timeout: float = 5.0
    ) -> None:
        self._http = http
        self._secrets_dir = secrets_dir
        self._timeout = timeout
        self.requests = 0

    def _secret(self, auth: AuthConfig) -> str | None:
        assert auth.introspection is not None
        ref = auth.introspection.client_secret_ref
        if ref is None:
            return None
        if self._secrets_dir is None:
            raise IntrospectionUnavailable(
                f"the client secret {ref.name}/{ref.key} is named but the gateway has no "
                "secrets directory (--secrets-dir)"
            )
        path = self._secrets_dir / ref.name / ref.key
        try:
            return path.read_text().strip()
        except OSError as e:
            raise IntrospectionUnavailable(f"cannot read the client secret at {path}: {e}") from e

    async def introspect(self, token: str, auth: AuthConfig) -> dict[str, Any]:
        """The endpoint's answer about ``token`` (``active`` and its claims)."""
        config = auth.introspection
        assert config is not None, "the tenant has no introspection endpoint"
        form = {"token": token, "token_type_hint": "access_token"}
        secret = self._secret(auth)
        basic: httpx.BasicAuth | None = None
        if secret is None:
            form["client_id"] = config.client_id
        else:
            basic = httpx.BasicAuth(config.client_id, secret)
        self.requests += 1
        try:
            response = await self._http.post(
                config.endpoint,
                data=form,
                auth=basic if basic is not None else httpx.USE_CLIENT_DEFAULT,
                headers={"accept": "application/json"},
                timeout=self._timeout,
            )
            response.raise_for_status()
            answer = response.json()
        except (httpx.HTTPError, ValueError) as e:
            raise IntrospectionUnavailable(f"{config.endpoint}: {e}") from e
        if not isinstance(answer, dict):
            raise IntrospectionUnavailable(f"{config.endpoint}: not a JSON object")
        return answer
