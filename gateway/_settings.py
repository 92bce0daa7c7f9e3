"""The gateway's settings: one typed object, built once at the entry point. No I/O here."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit


def with_password(url: str, password: str) -> str:
    """``url`` with ``password`` (percent-encoded) as its password, unless it has one already.

    Lets a deployment keep the Redis password in a Secret
    (``STOWAGE_REDIS_PASSWORD``) apart from the URL, whatever characters it holds.
    """
    parts = urlsplit(url)
    if parts.password is not None or not password:
        return url
    user = quote(parts.username, safe="") if parts.username else ""
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{user}:{quote(password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class GatewaySettings:
    """Everything the gateway app is configured with.

    ``public_url`` is the base URL clients use (``https://mcp.example.com``); the
    resource URL of tenant T is ``{public_url}/t/T/mcp`` and its RFC 9728 metadata
    lives under ``{public_url}/.well-known/oauth-protected-resource/t/T/mcp``.
    """

    tenants_file: Path | None = None
    public_url: str = "http://127.0.0.1:8000"
    #: Host header values accepted on MCP endpoints (DNS-rebinding protection).
    #: ``host:*`` allows any port. Empty: the public URL's host plus loopback.
    allowed_hosts: tuple[str, ...] = ()
    #: Browser origins accepted on MCP endpoints (CORS and the Origin check).
    allowed_origins: tuple[str, ...] = ()
    redis_url: str | None = None
    #: Largest accepted request body; larger ones get 413.
    max_body_bytes: int = 1024 * 1024
    #: Deadline of every worker call, retries included.
    call_timeout: float = 10.0
    #: Seconds between tenant file checks.
    reload_interval: float = 1.0
    #: Leeway for exp/nbf, seconds.
    token_leeway: int = 30
    #: An unknown kid refetches an issuer's JWKS at most this often, seconds.
    jwks_min_refresh: float = 30.0
    #: Cached (issuer, subject) → user id mappings.
    user_cache_size: int = 10_000
    #: Seconds between catch-ups of each tenant's revocations from its worker (with
    #: Redis, revocations arrive at once and this only repairs a lost message).
    revocation_sync_interval: float = 30.0
    #: Revoked identities remembered per tenant; past it the oldest fold into a cut-off.
    revocation_cache_size: int = 100_000
    #: An introspected (opaque) token's answer is reused for at most this long, seconds.
    introspection_cache_seconds: float = 60.0
    #: Where introspection client secrets are mounted: ``<dir>/<secret name>/<key>``.
    secrets_dir: Path | None = None
    log_level: str = "INFO"
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def public_host(self) -> str:
        return urlsplit(self.public_url).netloc

    def effective_allowed_hosts(self) -> list[str]:
        if self.allowed_hosts:
            return list(self.allowed_hosts)
        return [self.public_host, "127.0.0.1:*", "localhost:*", "[::1]:*"]

    def resource_url(self, tenant: str) -> str:
        return f"{self.public_url.rstrip('/')}/t/{tenant}/mcp"

    def resource_metadata_url(self, tenant: str) -> str:
        return f"{self.public_url.rstrip('/')}/.well-known/oauth-protected-resource/t/{tenant}/mcp"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> GatewaySettings:
        """Settings from ``STOWAGE_GATEWAY_*`` variables; explicit overrides win when not None.

        ``STOWAGE_REDIS_PASSWORD``, when set, is put into the Redis URL (from the
        environment or the override) that has no password of its own.
        """
        env = os.environ if env is None else env

        def split(name: str) -> tuple[str, ...]:
            return tuple(v.strip() for v in env.get(name, "").split(",") if v.strip())

        values: dict[str, object] = {}
        if v := env.get("STOWAGE_GATEWAY_TENANTS_FILE"):
            values["tenants_file"] = Path(v)
        if v := env.get("STOWAGE_GATEWAY_PUBLIC_URL"):
            values["public_url"] = v
        if hosts := split("STOWAGE_GATEWAY_ALLOWED_HOSTS"):
            values["allowed_hosts"] = hosts
        if origins := split("STOWAGE_GATEWAY_ALLOWED_ORIGINS"):
            values["allowed_origins"] = origins
        if v := env.get("STOWAGE_REDIS_URL"):
            values["redis_url"] = v
        if v := env.get("STOWAGE_GATEWAY_MAX_BODY_BYTES"):
            values["max_body_bytes"] = int(v)
        if v := env.get("STOWAGE_GATEWAY_CALL_TIMEOUT"):
            values["call_timeout"] = float(v)
        if v := env.get("STOWAGE_GATEWAY_RELOAD_INTERVAL"):
            values["reload_interval"] = float(v)
        if v := env.get("STOWAGE_GATEWAY_JWKS_MIN_REFRESH"):
            values["jwks_min_refresh"] = float(v)
        if v := env.get("STOWAGE_GATEWAY_REVOCATION_SYNC_INTERVAL"):
            values["revocation_sync_interval"] = float(v)
        if v := env.get("STOWAGE_GATEWAY_INTROSPECTION_CACHE_SECONDS"):
            values["introspection_cache_seconds"] = float(v)
        if v := env.get("STOWAGE_GATEWAY_SECRETS_DIR"):
            values["secrets_dir"] = Path(v)
        values.update({k: v for k, v in overrides.items() if v is not None and v != ()})
        if values.get("redis_url") and (password := env.get("STOWAGE_REDIS_PASSWORD")):
            values["redis_url"] = with_password(str(values["redis_url"]), password)
        return cls(**values)  # type: ignore[arg-type]
