"""Bearer token checks for one tenant: signature, algorithm, issuer, audience, time.

A token is accepted only when all of these hold:

- its ``alg`` is on an allow-list of asymmetric algorithms (never ``none``,
  never HMAC: a shared-secret algorithm with a public key is a forgery vector);
- its ``iss`` is the tenant's issuer, checked before any key fetch;
- it is signed by a key from that issuer's JWKS, looked up by ``kid``;
- its ``aud`` names the tenant's resource URL, so a token for tenant A is
  useless at tenant B;
- ``exp`` has not passed and ``nbf`` has, with a small leeway;
- it carries a subject.

A tenant whose issuer hands out opaque tokens names an RFC 7662 introspection
endpoint (``auth.introspection``; with ``allTokens``, JWTs go there too, so the
issuer's own logouts and revocations count): such a token is then accepted
only when that endpoint says it is ``active``, names the tenant's issuer and
audience (when it names any) and has a subject. Its answer is cached for at
most ``introspection_seconds`` and never past the token's ``exp``; an
inactive answer is remembered as briefly, so a flood of a bad token does not
become a flood at the endpoint.

The sign-in time: a token's ``auth_time`` (when the user authenticated for the
grant; a refresh keeps it) is what revocations compare, so a refresh cannot
undo one. A token without it falls back to ``iat``, and the gateway logs once
per tenant that its revocations then last only until the next refresh; a
tenant with ``auth.requireAuthTime`` refuses such a token instead (401).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
from collections import OrderedDict
from typing import Any

from joserfc import jwt
from joserfc.errors import BadSignatureError, ClaimError, ExpiredTokenError, JoseError

from gateway._errors import AuthError, IntrospectionUnavailable, KeysUnavailable
from gateway._types import Principal, Tenant
from gateway.auth._introspection import Introspector
from gateway.auth._jwks import JwksCache

log = logging.getLogger(__name__)

ALLOWED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
MAX_TOKEN_BYTES = 16 * 1024


def _b64json(segment: str) -> dict[str, Any]:
    padded = segment + "=" * (-len(segment) % 4)
    value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _seconds(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _text_claim(claims: dict[str, Any], name: str | None) -> str | None:
    """A claim the tenant names (``spec.identity``), when the token has it as text."""
    value = claims.get(name) if name is not None else None
    return value[:1024] if isinstance(value, str) and value else None


def _principal(tenant: Tenant, claims: dict[str, Any]) -> Principal:
    """The caller a checked token (or introspection answer) names."""
    issued = _seconds(claims.get("iat"))
    session = claims.get("sid")
    identity = tenant.spec.identity
    email = claims.get(identity.email_claim or "email")
    verified = claims.get("email_verified", True) not in (False, "false")
    user = claims.get(identity.user_claim)
    if not isinstance(user, str | int) or isinstance(user, bool) or user == "":
        raise AuthError("claims", f"The token has no {identity.user_claim} claim (the user)")
    return Principal(
        issuer=tenant.auth.issuer,
        subject=str(user),
        name=_text_claim(claims, identity.name_claim),
        org=_text_claim(claims, identity.org_claim),
        scopes=scopes_of(claims),
        client_id=claims.get("client_id") or claims.get("azp"),
        issued_at=issued if issued is not None else _seconds(claims.get("nbf")),
        email=email if isinstance(email, str) and email and verified else None,
        email_verified=claims.get("email_verified") in (True, "true"),
        authenticated_at=_seconds(claims.get("auth_time")),
        session=session if isinstance(session, str) and session else None,
    )


def _audiences(raw: object) -> list[str]:
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list):
        return [a for a in raw if isinstance(a, str)]
    return []


def scopes_of(claims: dict[str, Any]) -> frozenset[str]:
    """``scope`` (space-separated, RFC 8693/9068) or ``scp`` (a list)."""
    raw = claims.get("scope", claims.get("scp"))
    if isinstance(raw, str):
        return frozenset(raw.split())
    if isinstance(raw, list):
        return frozenset(s for s in raw if isinstance(s, str))
    return frozenset()


class TokenVerifier:
    """Checks tokens; remembers accepted ones briefly so a client's next call skips the RSA work.

    The cache is keyed by the token's SHA-256 and the tenant, holds at most
    ``cache_size`` entries, and an entry lives until the token's ``exp`` or
    ``cache_seconds``, whichever comes first (which bounds how long a token
    signed by a key the issuer has since withdrawn stays accepted).
    """

    def __init__(
        self,
        keys: JwksCache,
        *,
        leeway: int = 30,
        cache_size: int = 10_000,
        cache_seconds: float = 300.0,
        introspector: Introspector | None = None,
        introspection_seconds: float = 60.0,
    ) -> None:
        self._keys = keys
        self._leeway = leeway
        self._accepted: OrderedDict[tuple[bytes, str], tuple[Principal, float]] = OrderedDict()
        self._inactive: OrderedDict[tuple[bytes, str], float] = OrderedDict()
        self._cache_size = cache_size
        self._cache_seconds = cache_seconds
        self._introspector = introspector
        self._introspection_seconds = introspection_seconds
        #: Tenants already warned that their tokens carry no ``auth_time``.
        self._warned_no_auth_time: set[str] = set()

    async def verify(self, token: str, tenant: Tenant) -> Principal:
        """The caller behind ``token`` at ``tenant``, or AuthError saying why not."""
        key = (hashlib.sha256(token.encode()).digest(), tenant.name)
        hit = self._accepted.get(key)
        if hit is not None:
            principal, until = hit
            if time.time() < until and principal.issuer == tenant.auth.issuer:
                self._check_sign_in_time(tenant, principal)  # the spec may have changed
                return principal
            del self._accepted[key]
        principal, expires = await self._verify(token, tenant)
        self._check_sign_in_time(tenant, principal)
        self._accepted[key] = (principal, min(expires, time.time() + self._cache_seconds))
        while len(self._accepted) > self._cache_size:
            self._accepted.popitem(last=False)
        return principal

    def _check_sign_in_time(self, tenant: Tenant, principal: Principal) -> None:
        """Refuse a token without ``auth_time`` where required; else warn once per tenant."""
        if principal.authenticated_at is not None:
            return
        if tenant.auth.require_auth_time:
            raise AuthError("claims", "The token has no auth_time claim, which this app requires")
        if tenant.name not in self._warned_no_auth_time:
            self._warned_no_auth_time.add(tenant.name)
            log.warning(
                "tokens without auth_time: a revocation of this tenant's users lasts only until "
                "their client refreshes its token (see auth.requireAuthTime)",
                extra={"tenant": tenant.name, "issuer": tenant.auth.issuer},
            )

    async def _verify(self, token: str, tenant: Tenant) -> tuple[Principal, float]:
        if len(token) > MAX_TOKEN_BYTES:
            raise AuthError("malformed", "The token is too large")
        parts = token.split(".")
        introspection = tenant.auth.introspection
        if introspection is not None and (len(parts) != 3 or introspection.all_tokens):
            return await self._introspected(token, tenant)
        if len(parts) != 3:
            raise AuthError("malformed", "The token is not a JWT")
        try:
            header = _b64json(parts[0])
            unverified = _b64json(parts[1])
        except (ValueError, UnicodeError) as e:
            raise AuthError("malformed", "The token is not a JWT") from e
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise AuthError("algorithm", "The token's signing algorithm is not accepted")
        if unverified.get("iss") != tenant.auth.issuer:
            raise AuthError("issuer", "The token was issued by another authorization server")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise AuthError("malformed", "The token's key id is not a string")
        try:
            key = await self._keys.key(tenant.auth.issuer, tenant.auth.jwks_uri, kid)
        except KeysUnavailable as e:
            raise AuthError("keys_unavailable", "The issuer's keys cannot be fetched") from e
        if key is None:
            raise AuthError("unknown_key", "The token is signed by a key the issuer does not list")
        try:
            decoded = jwt.decode(token, key, algorithms=[alg])
        except BadSignatureError as e:
            raise AuthError("signature", "The token's signature is not valid") from e
        except (JoseError, ValueError, TypeError) as e:
            raise AuthError("malformed", "The token cannot be verified") from e
        claims = decoded.claims
        registry = jwt.JWTClaimsRegistry(
            leeway=self._leeway,
            iss={"essential": True, "value": tenant.auth.issuer},
            aud={"essential": True, "value": tenant.auth.audience},
            sub={"essential": True},
            exp={"essential": True},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError as e:
            raise AuthError("expired", "The token has expired") from e
        except ClaimError as e:
            reason = {"aud": "audience", "iss": "issuer", "nbf": "not_yet_valid"}.get(
                e.claim, "claims"
            )
            raise AuthError(reason, f"The token's {e.claim} claim is not acceptable") from e
        return _principal(tenant, claims), float(claims["exp"])

    async def _introspected(self, token: str, tenant: Tenant) -> tuple[Principal, float]:
        """An opaque token, as the tenant's introspection endpoint describes it."""
        assert self._introspector is not None, "introspection needs an Introspector"
        key = (hashlib.sha256(token.encode()).digest(), tenant.name)
        now = time.time()
        refused_until = self._inactive.get(key)
        if refused_until is not None and now < refused_until:
            raise AuthError("inactive", "The token is not active")
        try:
            claims = await self._introspector.introspect(token, tenant.auth)
        except IntrospectionUnavailable as e:
            raise AuthError(
                "introspection_unavailable", "The token cannot be checked with its issuer now"
            ) from e
        if claims.get("active") is not True:
            self._inactive[key] = now + self._introspection_seconds
            while len(self._inactive) > self._cache_size:
                self._inactive.popitem(last=False)
            raise AuthError("inactive", "The token is not active")
        if "iss" in claims and claims["iss"] != tenant.auth.issuer:
            raise AuthError("issuer", "The token was issued by another authorization server")
        if "aud" in claims and tenant.auth.audience not in _audiences(claims["aud"]):
            raise AuthError("audience", "The token's aud claim is not acceptable")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise AuthError("claims", "The token's sub claim is not acceptable")
        exp = _seconds(claims.get("exp"))
        if exp is not None and exp < now - self._leeway:
            raise AuthError("expired", "The token has expired")
        until = now + self._introspection_seconds
        return _principal(tenant, claims), until if exp is None else min(exp, until)
