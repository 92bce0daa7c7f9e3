"""Authentication: the request's bearer token → the verified ``Principal``, or 401.

No token (or another scheme) is a 401 ``invalid_request`` whose challenge
names no error, as RFC 6750 asks; a token the ``TokenVerifier`` refuses is a
401 ``invalid_token`` saying why. Both carry the tenant's challenge, and
both count in ``auth_failures`` under their reason.
"""

from __future__ import annotations

from starlette.types import Scope

from gateway._errors import AuthError
from gateway._metrics import Metrics
from gateway._types import Principal, Tenant
from gateway.auth._auth import TokenVerifier
from gateway.gate._asgi import Refused, Reply, header
from gateway.gate._challenges import Challenges


def _bearer_token(scope: Scope) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, else None."""
    raw = header(scope, b"authorization")
    scheme, _, token = (raw or "").partition(" ")
    if not raw or scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class Authentication:
    def __init__(self, verifier: TokenVerifier, challenges: Challenges, metrics: Metrics) -> None:
        self._verifier = verifier
        self._challenges = challenges
        self._metrics = metrics

    async def principal(self, tenant: Tenant, scope: Scope) -> Principal:
        """Who the request's token says is calling; ``Refused`` with a 401 otherwise."""
        token = _bearer_token(scope)
        if token is None:
            self._metrics.auth_failures.labels(tenant.name, "missing").inc()
            body = {"error": "invalid_request", "error_description": "A bearer token is required"}
            raise Refused(Reply(401, body, self._challenges.header(tenant.name, None)))
        try:
            return await self._verifier.verify(token, tenant)
        except AuthError as e:
            self._metrics.auth_failures.labels(tenant.name, e.reason).inc()
            body = {"error": "invalid_token", "error_description": e.description}
            headers = self._challenges.header(tenant.name, "invalid_token", e.description)
            raise Refused(Reply(401, body, headers)) from e
