"""Issuer signing keys over HTTP: discovery, a cache, and bounded refreshes.

Keys are cached per issuer. A token with a ``kid`` the cache does not know
triggers one refetch, but never more often than ``min_refresh_interval`` per
issuer, so a flood of tokens with random ``kid`` values cannot turn the gateway
into a load generator against the issuer.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
from joserfc.errors import JoseError
from joserfc.jwk import Key, KeySet

from gateway._errors import KeysUnavailable
from stowage import tracing

log = logging.getLogger(__name__)
_SPANS = tracing.Tracer("gateway")

#: Only asymmetric key types are ever accepted from a JWKS.
_ASYMMETRIC_KTY = frozenset({"RSA", "EC", "OKP"})


def discovery_urls(issuer: str) -> list[str]:
    """RFC 8414 (path-inserted) first, then OpenID Connect discovery."""
    base = issuer.rstrip("/")
    scheme, _, rest = base.partition("://")
    host, _, path = rest.partition("/")
    rfc8414 = f"{scheme}://{host}/.well-known/oauth-authorization-server"
    return [rfc8414 + (f"/{path}" if path else ""), f"{base}/.well-known/openid-configuration"]


@dataclass
class _Entry:
    keys: dict[str | None, Key] = field(default_factory=dict)
    fetched_at: float = float("-inf")
    attempted_at: float = float("-inf")
    lock: anyio.Lock = field(default_factory=anyio.Lock)


class JwksCache:
    """Signing keys of each issuer, fetched on demand and kept for ``max_age``."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        min_refresh_interval: float = 30.0,
        max_age: float = 3600.0,
    ) -> None:
        self._http = http
        self._min_refresh = min_refresh_interval
        self._max_age = max_age
        self._entries: dict[tuple[str, str | None], _Entry] = {}
        self.fetches = 0

    async def key(self, issuer: str, jwks_uri: str | None, kid: str | None) -> Key | None:
        """The issuer's key for ``kid``; None when the issuer does not have it."""
        entry = self._entries.setdefault((issuer, jwks_uri), _Entry())
        now = time.monotonic()
        found = self._lookup(entry, kid)
        if found is not None and now - entry.fetched_at < self._max_age:
            return found
        async with entry.lock:
            found = self._lookup(entry, kid)
            fresh = time.monotonic() - entry.fetched_at < self._max_age
            if found is not None and fresh:
                return found
            if time.monotonic() - entry.attempted_at < self._min_refresh:
                return found  # refreshed a moment ago: the kid is really unknown
            entry.attempted_at = time.monotonic()
            try:
                with _SPANS.span("gateway.jwks_fetch", {"stowage.issuer": issuer}):
                    entry.keys = await self._fetch(issuer, jwks_uri)
            except KeysUnavailable:
                if found is not None:
                    return found  # keep serving with keys we already trust
                raise
            entry.fetched_at = time.monotonic()
            return self._lookup(entry, kid)

    @staticmethod
    def _lookup(entry: _Entry, kid: str | None) -> Key | None:
        if kid is None:
            return next(iter(entry.keys.values())) if len(entry.keys) == 1 else None
        return entry.keys.get(kid)

    async def _fetch(self, issuer: str, jwks_uri: str | None) -> dict[str | None, Key]:
        self.fetches += 1
        uri = jwks_uri or await self._discover(issuer)
        document = await self._get_json(uri)
        raw_keys = document.get("keys")
        if not isinstance(raw_keys, list):
            raise KeysUnavailable(f"{uri}: no 'keys' list")
        keys: dict[str | None, Key] = {}
        for raw in raw_keys:
            if not isinstance(raw, dict) or raw.get("kty") not in _ASYMMETRIC_KTY:
                continue
            if raw.get("use", "sig") != "sig":
                continue
            try:
                key = KeySet.import_key_set({"keys": [raw]}).keys[0]
            except (JoseError, ValueError, TypeError) as e:
                log.warning("skipping an unreadable key from %s: %s", uri, e)
                continue
            keys[key.kid] = key
        log.info("fetched signing keys", extra={"issuer": issuer, "keys": len(keys)})
        return keys

    async def _discover(self, issuer: str) -> str:
        for url in discovery_urls(issuer):
            try:
                metadata = await self._get_json(url)
            except KeysUnavailable:
                continue
            uri = metadata.get("jwks_uri")
            if isinstance(uri, str) and metadata.get("issuer", issuer).rstrip("/") == issuer.rstrip(
                "/"
            ):
                return uri
        raise KeysUnavailable(f"no usable discovery document for issuer {issuer}")

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = await self._http.get(url, timeout=5.0)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as e:
            raise KeysUnavailable(f"{url}: {e}") from e
        if not isinstance(document, dict):
            raise KeysUnavailable(f"{url}: not a JSON object")
        return document
