"""Plain values the operator passes between layers. No I/O here."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, NewType, TypedDict

TenantName = NewType("TenantName", str)
RegionName = NewType("RegionName", str)
Namespace = NewType("Namespace", str)

ConditionStatus = Literal["True", "False", "Unknown"]

#: A Kubernetes object as the API returns or accepts it.
Body = dict[str, Any]


class Trigger(StrEnum):
    """What started a reconciliation (a metric label and a log field)."""

    CREATE = "create"
    UPDATE = "update"
    RESUME = "resume"
    RESYNC = "resync"


class Result(StrEnum):
    """How a reconciliation ended (a metric label): done, to retry, refused, or a bug."""

    OK = "ok"
    RETRY = "retry"
    INVALID = "invalid"
    ERROR = "error"


class ObjectMeta(TypedDict, total=False):
    name: str
    namespace: str
    uid: str
    generation: int
    labels: dict[str, str]
    annotations: dict[str, str]
    deletionTimestamp: str


class ConditionBody(TypedDict, total=False):
    type: str
    status: ConditionStatus
    reason: str
    message: str
    observedGeneration: int
    lastTransitionTime: str


@dataclass(frozen=True)
class TenantRef:
    """Which Tenant, at which generation."""

    namespace: Namespace
    name: TenantName
    uid: str
    generation: int


@dataclass(frozen=True)
class ObjectStore:
    """A Region's ``spec.objectStore``: the S3-compatible bucket its tenants' files go to."""

    endpoint: str
    bucket: str
    #: ``credentialsSecretRef``: the Secret with the access key id and secret access key.
    credentials_secret_name: str
    credentials_secret_namespace: str
    access_key_id_key: str = "accessKeyId"
    secret_access_key_key: str = "secretAccessKey"
    region: str = "us-east-1"
    #: Prefix of every tenant's own prefix (``<prefix>tenants/<namespace>/<name>/``).
    prefix: str = ""
    path_style: bool = True
    #: ``serverSideEncryption``: "" (the bucket's default), "AES256" or "aws:kms".
    sse: str = ""
    sse_kms_key_id: str = ""
    #: ``caSecretRef``: the CA of the endpoint's TLS certificate; "" for the system's.
    ca_secret_name: str = ""
    ca_secret_namespace: str = ""
    ca_secret_key: str = "ca.crt"

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> ObjectStore:
        creds = spec.get("credentialsSecretRef") or {}
        sse = spec.get("serverSideEncryption") or {}
        ca = spec.get("caSecretRef") or {}
        return cls(
            endpoint=str(spec["endpoint"]).rstrip("/"),
            bucket=str(spec["bucket"]),
            credentials_secret_name=str(creds["name"]),
            credentials_secret_namespace=str(creds["namespace"]),
            access_key_id_key=str(creds.get("accessKeyIdKey") or "accessKeyId"),
            secret_access_key_key=str(creds.get("secretAccessKeyKey") or "secretAccessKey"),
            region=str(spec.get("region") or "us-east-1"),
            prefix=str(spec.get("prefix") or ""),
            path_style=bool(spec.get("pathStyle", True)),
            sse=str(sse.get("type") or ""),
            sse_kms_key_id=str(sse.get("kmsKeyId") or ""),
            ca_secret_name=str(ca.get("name") or ""),
            ca_secret_namespace=str(ca.get("namespace") or ""),
            ca_secret_key=str(ca.get("key") or "ca.crt"),
        )

    def tenant_prefix(self, tenant: TenantRef) -> str:
        """The key prefix of one tenant's objects: its own, so tenants never share a key."""
        return f"{self.prefix}tenants/{tenant.namespace}/{tenant.name}/"


@dataclass(frozen=True)
class ObjectStoreCredentials:
    """What the tenants' workers need from the Region's Secrets to reach its bucket."""

    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    #: The CA (PEM) of the endpoint's certificate; "" for the system's roots.
    ca_cert: str = field(default="", repr=False)


@dataclass(frozen=True)
class Region:
    """A Region's spec, parsed."""

    name: RegionName
    host: str
    port: int
    database: str
    ssl_mode: str
    admin_secret_name: str
    admin_secret_namespace: str
    accepting_tenants: bool = True
    #: ``spec.postgres.caSecretRef``: the Secret holding the CA of the server's certificate.
    ca_secret_name: str = ""
    ca_secret_namespace: str = ""
    ca_secret_key: str = "ca.crt"
    node_selector: Mapping[str, str] = field(default_factory=dict)
    affinity: Mapping[str, Any] | None = None
    tolerations: tuple[Mapping[str, Any], ...] = ()
    #: ``spec.backup``: the region's backup storage and the tenants' default schedule.
    backup: Mapping[str, Any] = field(default_factory=dict)
    #: ``spec.objectStore``: where its tenants' files go; None: their own databases.
    object_store: ObjectStore | None = None

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Region:
        spec = body.get("spec") or {}
        store = spec.get("objectStore")
        pg = spec.get("postgres") or {}
        ref = pg.get("adminSecretRef") or {}
        ca = pg.get("caSecretRef") or {}
        return cls(
            name=RegionName(body["metadata"]["name"]),
            host=pg["host"],
            port=int(pg.get("port", 5432)),
            database=pg.get("database", "postgres"),
            ssl_mode=pg.get("sslMode", "prefer"),
            admin_secret_name=ref["name"],
            admin_secret_namespace=ref["namespace"],
            ca_secret_name=ca.get("name", ""),
            ca_secret_namespace=ca.get("namespace", ""),
            ca_secret_key=ca.get("key") or "ca.crt",
            accepting_tenants=bool(spec.get("acceptingTenants", True)),
            node_selector=dict(spec.get("nodeSelector") or {}),
            affinity=spec.get("affinity"),
            tolerations=tuple(spec.get("tolerations") or ()),
            backup=dict(spec.get("backup") or {}),
            object_store=ObjectStore.from_spec(store) if store else None,
        )


@dataclass(frozen=True)
class AdminCredentials:
    """How the operator reaches a region's PostgreSQL as its admin.

    ``slots`` caps the admin connections open to that server at once (shared
    by every reconcile of the region's tenants), so the operator alone can
    never exhaust its ``max_connections``.
    """

    host: str
    port: int
    database: str
    ssl_mode: str
    user: str
    password: str = field(repr=False)
    slots: asyncio.Semaphore | None = field(default=None, repr=False, compare=False)
    #: The Region's CA (PEM) to verify the server against; empty: libpq's defaults.
    ca_cert: str = field(default="", repr=False)


@dataclass(frozen=True)
class DatabaseCredentials:
    """A tenant's database and role; the password stays in the tenant's Secret."""

    host: str
    port: int
    database: str
    user: str
    ssl_mode: str
    password: str = field(repr=False)
    #: The Region's CA (PEM), copied into the tenant's Secret; empty: none.
    ca_cert: str = field(default="", repr=False)

    def url(self, root_cert: str = "") -> str:
        """The SQLAlchemy URL the worker and the migrations use; ``root_cert`` is where
        the Region's CA is found as a file by whoever connects (libpq's sslrootcert)."""
        from urllib.parse import quote

        url = (
            f"postgresql+psycopg://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
            f"@{self.host}:{self.port}/{quote(self.database, safe='')}?sslmode={self.ssl_mode}"
        )
        return f"{url}&sslrootcert={quote(root_cert)}" if root_cert else url


@dataclass(frozen=True)
class Condition:
    type: str
    status: ConditionStatus
    reason: str
    message: str


@dataclass(frozen=True)
class BackupFacts:
    """What the operator exports about a Tenant's backups; None where nothing is known yet.

    Times are Unix seconds. ``scheduled_since`` is when backups were last
    switched on (the BackupScheduled condition's transition to True), from
    which the first backup is awaited.
    """

    last_success: float | None = None
    size_bytes: float | None = None
    last_drill: float | None = None
    last_drill_succeeded: bool | None = None
    scheduled_since: float | None = None
