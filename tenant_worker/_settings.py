"""The worker's process settings, built once at the entry point. No I/O here.

Every field is declared in :data:`SETTINGS` with its flag and variable and read by
:mod:`stowage.runtime.config` (a flag beats its variable beats the default below; an
empty variable counts as unset).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from stowage.runtime import config
from stowage.runtime.config import Setting
from stowage.wire import INSTANCE
from tenant_worker.files import ObjectStoreConfig

#: Set by the supervisor in the environment of each worker process it starts.
CHILD_OF_ENV = "STOWAGE_WORKER_CHILD_OF"


@dataclass(frozen=True)
class WorkerSettings:
    """How one worker process runs; :data:`SETTINGS` documents each field.

    The tenant's rules (quotas, retention, collections) live in its policy file.
    """

    database_url: str
    tenant: str = "default"
    #: This run's instance id; calls that name another instance are refused.
    instance: str | None = None
    listen: str = "127.0.0.1:50051"
    #: Prometheus metrics port; 0 disables the metrics endpoint.
    metrics_port: int = 0
    #: YAML file with quotas, retention and collections (the Tenant spec's shape).
    policy_file: Path | None = None
    #: Seconds between purges of expired objects.
    purge_interval: float = 60.0
    #: Seconds between checks of the policy file for changes.
    policy_check_interval: float = 2.0
    purge_batch: int = 500
    default_page_size: int = 20
    max_page_size: int = 100
    #: At most 30 connections, all kept once opened (they are opened as needed): an
    #: overflow connection is closed as soon as it is returned, so a load hovering
    #: above the pool would open and close connections all the time (at 32 calls at
    #: once, three times PostgreSQL's CPU per call, measured with 20 + 10).
    db_pool_size: int = 30
    db_max_overflow: int = 0
    #: Largest gRPC message accepted; larger ones fail with RESOURCE_EXHAUSTED.
    max_message_bytes: int = 8 * 1024 * 1024
    #: Seconds an idempotency key is remembered.
    idempotency_ttl: float = 24 * 3600.0
    #: Worker processes serving the one port; above 1 a parent supervises them
    #: and serves their metrics, and the database pool is shared out among them.
    processes: int = 1
    #: Set only in a process the supervisor started (from CHILD_OF_ENV): it binds
    #: with SO_REUSEPORT beside its siblings and stops when that parent dies.
    parent_pid: int | None = None
    log_level: str = "INFO"
    #: The Region's S3-compatible object store for files' bytes; "" keeps them in the
    #: database. The operator sets these from the Region's ``spec.objectStore``.
    object_store_endpoint: str = ""
    object_store_bucket: str = ""
    object_store_region: str = "us-east-1"
    object_store_prefix: str = ""
    object_store_access_key_id: str = ""
    object_store_secret_access_key: str = ""
    object_store_sse: str = ""
    object_store_sse_kms_key_id: str = ""
    object_store_ca_file: str = ""
    object_store_path_style: bool = True
    object_store_part_bytes: int = 8 * 2**20

    @property
    def pool(self) -> tuple[int, int]:
        """(pool size, overflow) of one process: the totals shared out among the processes."""
        n = max(1, self.processes)
        return max(2, -(-self.db_pool_size // n)), -(-self.db_max_overflow // n)

    def object_store(self) -> ObjectStoreConfig | None:
        """The bucket new files' bytes go to; None: the tenant's database.

        Raises :class:`stowage.runtime.config.ConfigError` for an endpoint without
        a bucket or credentials.
        """
        if not self.object_store_endpoint:
            return None
        missing = [
            variable
            for variable, value in (
                ("STOWAGE_OBJECT_STORE_BUCKET", self.object_store_bucket),
                ("STOWAGE_OBJECT_STORE_ACCESS_KEY_ID", self.object_store_access_key_id),
                ("STOWAGE_OBJECT_STORE_SECRET_ACCESS_KEY", self.object_store_secret_access_key),
            )
            if not value
        ]
        if missing:
            raise config.ConfigError(
                f"STOWAGE_OBJECT_STORE_ENDPOINT is set, so {', '.join(missing)} must be too"
            )
        prefix = self.object_store_prefix or f"tenants/{self.tenant}/"
        return ObjectStoreConfig(
            endpoint=self.object_store_endpoint,
            bucket=self.object_store_bucket,
            prefix=prefix if prefix.endswith("/") else f"{prefix}/",
            access_key_id=self.object_store_access_key_id,
            secret_access_key=self.object_store_secret_access_key,
            region=self.object_store_region,
            sse=self.object_store_sse,
            sse_kms_key_id=self.object_store_sse_kms_key_id,
            ca_file=self.object_store_ca_file,
            path_style=self.object_store_path_style,
            part_bytes=self.object_store_part_bytes,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **flags: object) -> WorkerSettings:
        """Settings from ``flags`` (by field; None is not given) over the variables.

        Raises :class:`stowage.runtime.config.ConfigError` for a missing database URL, a
        variable that does not read, or an object store without its bucket or credentials.
        """
        settings: WorkerSettings = config.resolve(
            cls, SETTINGS, os.environ if env is None else env, flags
        )
        settings.object_store()  # an endpoint without a bucket or credentials fails here
        return settings

    def environ(self) -> dict[str, str]:
        """These settings as variables, for a worker process this one starts.

        The supervisor's children resolve the same settings from them, including
        those given here as flags (the database URL stays off the command line).
        """
        return config.to_environ(SETTINGS, self)


def instance_id(value: str) -> str:
    """An instance id: 1 to 64 letters, digits, ``.``, ``_`` or ``-``."""
    if not INSTANCE.match(value):
        raise ValueError(f"{value!r} is not an instance id (1 to 64 of A-Z a-z 0-9 . _ -)")
    return value


#: Every worker setting: its field, variable, cast and help (the order of ``--help``).
SETTINGS: tuple[Setting, ...] = (
    Setting(
        "database_url",
        "STOWAGE_DATABASE_URL",
        "the tenant's database, e.g. postgresql+psycopg://acme:…@pg:5432/acme or "
        "sqlite+aiosqlite:///acme.db",
        metavar="URL",
    ),
    Setting("tenant", "STOWAGE_TENANT", "the tenant this worker serves; other calls are refused"),
    Setting(
        "instance",
        "STOWAGE_WORKER_INSTANCE",
        "this worker's instance id (letters, digits, '.', '_', '-'); a call whose "
        "x-stowage-instance metadata names another one is refused, so a gateway never "
        "serves from a worker that is not its own",
        instance_id,
        shown_default="none: calls are not checked for an instance",
    ),
    Setting("listen", "STOWAGE_WORKER_LISTEN", "gRPC address, host:port", metavar="HOST:PORT"),
    config.metrics_port("STOWAGE_METRICS_PORT"),
    Setting(
        "policy_file",
        "STOWAGE_POLICY_FILE",
        "quotas, retention and collections (YAML, the Tenant spec's shape), re-read on change",
        config.path,
        shown_default="no quotas, no retention, no collections",
    ),
    Setting(
        "policy_check_interval",
        "STOWAGE_POLICY_CHECK_INTERVAL",
        "seconds between checks of the policy file for changes",
        config.number,
    ),
    Setting(
        "purge_interval",
        "STOWAGE_PURGE_INTERVAL",
        "seconds between purges of expired objects",
        config.number,
    ),
    Setting(
        "purge_batch",
        "STOWAGE_PURGE_BATCH",
        "expired objects a purge removes per transaction",
        config.at_least(1),
    ),
    Setting(
        "default_page_size",
        "STOWAGE_WORKER_DEFAULT_PAGE_SIZE",
        "objects per list page when the call names no page size",
        config.at_least(1),
    ),
    Setting(
        "max_page_size",
        "STOWAGE_WORKER_MAX_PAGE_SIZE",
        "most objects per list page",
        config.at_least(1),
    ),
    Setting(
        "db_pool_size",
        "STOWAGE_DB_POOL_SIZE",
        "database connections kept open, shared out among the processes",
        config.at_least(1),
    ),
    Setting(
        "db_max_overflow",
        "STOWAGE_DB_MAX_OVERFLOW",
        "database connections opened beyond the pool at peaks, shared out likewise",
        config.at_least(0),
    ),
    Setting(
        "max_message_bytes",
        "STOWAGE_WORKER_MAX_MESSAGE_BYTES",
        "largest gRPC message accepted; larger ones fail with RESOURCE_EXHAUSTED (at "
        "least 2 MiB: the gateway's batches of calls on one stream reach 1 MiB)",
        config.at_least(2 * 2**20),
    ),
    Setting(
        "idempotency_ttl",
        "STOWAGE_IDEMPOTENCY_TTL",
        "seconds an idempotency key is remembered",
        config.number,
    ),
    Setting(
        "processes",
        "STOWAGE_WORKER_PROCESSES",
        "worker processes sharing the port, supervised by this one",
        config.at_least(1),
    ),
    Setting(
        "parent_pid",
        CHILD_OF_ENV,
        "set by a supervising worker (--processes) for the processes it starts",
        config.integer,
        env_only=True,
    ),
    config.log_level("STOWAGE_WORKER_LOG_LEVEL"),
    Setting(
        "object_store_endpoint",
        "STOWAGE_OBJECT_STORE_ENDPOINT",
        "URL of the Region's S3-compatible object store, which new files' bytes go to",
        metavar="URL",
        shown_default="none: files' bytes stay in the tenant's database",
    ),
    Setting("object_store_bucket", "STOWAGE_OBJECT_STORE_BUCKET", "the object store's bucket"),
    Setting(
        "object_store_region",
        "STOWAGE_OBJECT_STORE_REGION",
        "the object store's region, as its requests are signed for (SigV4)",
    ),
    Setting(
        "object_store_prefix",
        "STOWAGE_OBJECT_STORE_PREFIX",
        "key prefix of this tenant's objects",
        shown_default="tenants/<tenant>/",
    ),
    Setting(
        "object_store_access_key_id",
        "STOWAGE_OBJECT_STORE_ACCESS_KEY_ID",
        "the object store's access key id (from a Secret)",
        env_only=True,
    ),
    Setting(
        "object_store_secret_access_key",
        "STOWAGE_OBJECT_STORE_SECRET_ACCESS_KEY",
        "the object store's secret access key (from a Secret)",
        env_only=True,
    ),
    Setting(
        "object_store_sse",
        "STOWAGE_OBJECT_STORE_SSE",
        "server-side encryption asked for on every object: AES256 or aws:kms",
        config.one_of("", "AES256", "aws:kms"),
        shown_default="none: the bucket's default",
    ),
    Setting(
        "object_store_sse_kms_key_id",
        "STOWAGE_OBJECT_STORE_SSE_KMS_KEY_ID",
        "the KMS key of aws:kms encryption",
        shown_default="the store's default key",
    ),
    Setting(
        "object_store_ca_file",
        "STOWAGE_OBJECT_STORE_CA_FILE",
        "PEM bundle to verify the object store's TLS certificate with",
        shown_default="the system's roots",
    ),
    Setting(
        "object_store_path_style",
        "STOWAGE_OBJECT_STORE_PATH_STYLE",
        "address the bucket in the URL's path (true) or as a virtual host (false)",
        config.boolean,
    ),
    Setting(
        "object_store_part_bytes",
        "STOWAGE_OBJECT_STORE_PART_BYTES",
        "bytes per multipart part: the most an upload holds in memory",
        config.at_least(5 * 2**20),
    ),
)
