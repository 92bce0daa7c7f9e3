"""The gateway's settings: one typed object, built once at the entry point. No I/O here.

Every field is declared in :data:`SETTINGS` with its flag and variable and read by
:mod:`stowage.runtime.config` (a flag beats its variable beats the default below; an
empty variable counts as unset).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from stowage.runtime import config
from stowage.runtime.config import Setting

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
#: Where tenants come from: the YAML tenants file, or Tenant resources (a read-only watch).
TENANT_SOURCES = ("file", "kubernetes")
#: Set by a supervising gateway (``--processes``) in the environment of each process it starts.
CHILD_OF_ENV = "STOWAGE_GATEWAY_CHILD_OF"
#: Where the processes of one supervising gateway write their metric samples. The
#: variable prometheus_client reads itself, when it is imported, to write them there.
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


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
    """Everything the gateway is configured with; :data:`SETTINGS` documents each field.

    ``public_url`` is the base URL clients use (``https://mcp.example.com``); the
    resource URL of tenant T is ``{public_url}/t/T/mcp`` and its RFC 9728 metadata
    lives under ``{public_url}/.well-known/oauth-protected-resource/t/T/mcp``.
    """

    tenants_file: Path | None = None
    public_url: str = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
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
    #: The master keys that file links are signed with (``current``, and after a
    #: rotation ``previous`` and ``rotated-at``); each tenant's key is derived from them.
    files_keys_dir: Path | None = None
    #: How long a signed file link (upload or download) lasts, seconds.
    file_link_seconds: int = 900
    #: A PEM bundle of CAs trusted for the issuers' HTTPS besides the public roots.
    issuer_ca_file: Path | None = None
    log_level: str = "INFO"
    #: ``file`` (``tenants_file``) or ``kubernetes`` (Tenant resources).
    tenants_from: str = "file"
    #: With ``kubernetes``: watch Tenants in this namespace only; None watches all.
    kube_namespace: str | None = None
    #: With ``kubernetes``: the cluster's kubeconfig; None is the in-cluster service account.
    kubeconfig: Path | None = None
    #: Where the HTTP server listens.
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    #: Gateway processes serving the one port; above 1 this one supervises them
    #: (gateway._processes), and Redis is required: each process keeps its own
    #: rate limits and revocations without it.
    processes: int = 1
    #: Set only in a process a supervisor started (from CHILD_OF_ENV): it binds
    #: with SO_REUSEPORT beside its siblings and stops when that parent dies.
    parent_pid: int | None = None
    #: Set only in a process a supervisor started: where every process writes its
    #: metric samples, and ``/metrics`` serves their sum.
    metrics_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.processes > 1 and not self.redis_url:
            raise config.ConfigError(
                f"--processes {self.processes} needs --redis-url / $STOWAGE_REDIS_URL: "
                "without Redis each process would keep its own rate limits and miss "
                "revocations made through the others"
            )

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
    def from_env(cls, env: Mapping[str, str] | None = None, **flags: object) -> GatewaySettings:
        """Settings from ``flags`` (by field; None is not given) over the variables.

        ``public_url`` unset is ``http://HOST:PORT``. ``STOWAGE_REDIS_PASSWORD``,
        when set, is put into the Redis URL that has no password of its own.
        Raises :class:`stowage.runtime.config.ConfigError` naming a variable that does not read.
        """
        env = os.environ if env is None else env
        values = config.read(SETTINGS, env, flags)
        password = values.pop("redis_password", "")
        values.setdefault(
            "public_url",
            f"http://{values.get('host', DEFAULT_HOST)}:{values.get('port', DEFAULT_PORT)}",
        )
        if values.get("redis_url") and password:
            values["redis_url"] = with_password(values["redis_url"], password)
        return cls(**values)

    def environ(self) -> dict[str, str]:
        """These settings as variables, for a gateway process this one starts.

        The child resolves the same settings from them, however this process got
        them (the Redis URL, password included, stays off command lines).
        """
        return config.to_environ((s for s in SETTINGS if s.field != "redis_password"), self)


#: Every gateway setting: its field, variable, cast and help (the order of ``--help``).
SETTINGS: tuple[Setting, ...] = (
    Setting(
        "tenants_from",
        "STOWAGE_GATEWAY_TENANTS_FROM",
        "where tenants come from: the YAML tenants file, or Tenant resources (read-only watch)",
        config.one_of(*TENANT_SOURCES),
        metavar="{" + ",".join(TENANT_SOURCES) + "}",
    ),
    Setting(
        "tenants_file",
        "STOWAGE_GATEWAY_TENANTS_FILE",
        "the tenants YAML file, re-read when it changes; needed with --tenants-from=file",
        config.path,
    ),
    Setting(
        "kube_namespace",
        "STOWAGE_GATEWAY_KUBE_NAMESPACE",
        "with --tenants-from=kubernetes: watch Tenants in this namespace only",
        shown_default="all namespaces",
    ),
    config.kubeconfig(
        "with --tenants-from=kubernetes: the cluster's kubeconfig",
        shown_default="in-cluster configuration",
    ),
    Setting("host", "STOWAGE_GATEWAY_HOST", "address the HTTP server listens on"),
    Setting("port", "STOWAGE_GATEWAY_PORT", "port the HTTP server listens on", config.integer),
    Setting(
        "processes",
        "STOWAGE_GATEWAY_PROCESSES",
        "gateway processes sharing the port, supervised by this one (restarted when one "
        "dies); above 1 needs --redis-url, which keeps rate limits and revocations shared",
        config.at_least(1),
    ),
    Setting(
        "public_url",
        "STOWAGE_GATEWAY_PUBLIC_URL",
        "base URL clients use; tenant T is served at PUBLIC_URL/t/T/mcp",
        shown_default="http://HOST:PORT",
    ),
    Setting(
        "allowed_hosts",
        "STOWAGE_GATEWAY_ALLOWED_HOSTS",
        "accepted Host header, host:* for any port (repeatable; the variable is comma-separated)",
        flag="--allowed-host",
        many=True,
        metavar="HOST",
        shown_default="the public URL's host and loopback",
    ),
    Setting(
        "allowed_origins",
        "STOWAGE_GATEWAY_ALLOWED_ORIGINS",
        "accepted browser origin (repeatable; the variable is comma-separated)",
        flag="--allowed-origin",
        many=True,
        metavar="ORIGIN",
        shown_default="loopback origins only",
    ),
    Setting(
        "redis_url",
        "STOWAGE_REDIS_URL",
        "share rate limits and revocations among replicas through Redis",
        shown_default="in-process",
    ),
    Setting(
        "redis_password",
        "STOWAGE_REDIS_PASSWORD",
        "put into the Redis URL (percent-encoded) when that URL has no password",
        env_only=True,
    ),
    Setting(
        "max_body_bytes",
        "STOWAGE_GATEWAY_MAX_BODY_BYTES",
        "largest accepted request body in bytes; larger ones get 413",
        config.at_least(1),
    ),
    Setting(
        "call_timeout",
        "STOWAGE_GATEWAY_CALL_TIMEOUT",
        "deadline of every worker call, retries included, seconds",
        config.number,
    ),
    Setting(
        "reload_interval",
        "STOWAGE_GATEWAY_RELOAD_INTERVAL",
        "seconds between checks of the tenants file",
        config.number,
    ),
    Setting(
        "token_leeway",
        "STOWAGE_GATEWAY_TOKEN_LEEWAY",
        "clock leeway for a token's exp and nbf, seconds",
        config.at_least(0),
    ),
    Setting(
        "jwks_min_refresh",
        "STOWAGE_GATEWAY_JWKS_MIN_REFRESH",
        "an unknown key id refetches an issuer's JWKS at most this often, seconds",
        config.number,
    ),
    Setting(
        "user_cache_size",
        "STOWAGE_GATEWAY_USER_CACHE_SIZE",
        "(issuer, subject) to user id mappings kept in memory",
        config.at_least(0),
    ),
    Setting(
        "revocation_sync_interval",
        "STOWAGE_GATEWAY_REVOCATION_SYNC_INTERVAL",
        "seconds between catch-ups of each tenant's revocations from its worker",
        config.number,
    ),
    Setting(
        "revocation_cache_size",
        "STOWAGE_GATEWAY_REVOCATION_CACHE_SIZE",
        "revoked identities remembered per tenant; past it the oldest fold into a cut-off",
        config.at_least(1),
    ),
    Setting(
        "introspection_cache_seconds",
        "STOWAGE_GATEWAY_INTROSPECTION_CACHE_SECONDS",
        "longest reuse of an opaque token's introspection answer, seconds",
        config.number,
    ),
    Setting(
        "secrets_dir",
        "STOWAGE_GATEWAY_SECRETS_DIR",
        "introspection client secrets, mounted as DIR/NAME/KEY",
        config.path,
    ),
    Setting(
        "files_keys_dir",
        "STOWAGE_GATEWAY_FILES_KEYS_DIR",
        "the master keys file links are signed with: DIR/current (at least 32 random "
        "characters), after a rotation DIR/previous and DIR/rotated-at (Unix seconds); "
        "each tenant's key is derived from them. Without it the files tools answer "
        "files_unavailable",
        config.path,
        metavar="DIR",
    ),
    Setting(
        "file_link_seconds",
        "STOWAGE_GATEWAY_FILE_LINK_SECONDS",
        "how long a signed file link (upload or download) lasts, seconds",
        config.at_least(1),
    ),
    Setting(
        "issuer_ca_file",
        "STOWAGE_GATEWAY_ISSUER_CA_FILE",
        "PEM bundle of private CAs trusted for the issuers' discovery, JWKS and "
        "introspection, besides the public roots",
        config.path,
        metavar="FILE",
    ),
    config.log_level("STOWAGE_GATEWAY_LOG_LEVEL"),
    Setting(
        "parent_pid",
        CHILD_OF_ENV,
        "set by a supervising gateway (--processes) for the processes it starts",
        config.integer,
        env_only=True,
    ),
    Setting(
        "metrics_dir",
        METRICS_DIR_ENV,
        "set by a supervising gateway (--processes) for the processes it starts: where "
        "each writes its metric samples; /metrics serves their sum",
        config.path,
        env_only=True,
    ),
)
