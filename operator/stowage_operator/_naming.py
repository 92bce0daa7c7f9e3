"""Names of everything the operator creates for a Tenant. No I/O here.

Database and role names are derived from the namespace and name only, so a
re-created Tenant (after ``deletionPolicy: Retain``) finds its data again and a
restarted operator never creates a second database for the same Tenant.
"""

from __future__ import annotations

import hashlib
import re

from stowage_operator._types import Namespace, Region, TenantName, TenantRef

WORKER_PORT = 50051
METRICS_PORT = 9100
POLICY_KEY = "policy.yaml"
POLICY_DIR = "/etc/stowage"
#: The tenant Secret's key holding the Region's CA, and where worker and backup pods mount it.
POSTGRES_CA_KEY = "ca.crt"
POSTGRES_CA_DIR = "/etc/stowage/postgres-ca"
POSTGRES_CA_FILE = f"{POSTGRES_CA_DIR}/{POSTGRES_CA_KEY}"
#: The keys of the tenant's object-store Secret, and where workers mount its CA.
OBJECT_STORE_ACCESS_KEY_ID = "access-key-id"
OBJECT_STORE_SECRET_ACCESS_KEY = "secret-access-key"
OBJECT_STORE_CA_KEY = "ca.crt"
OBJECT_STORE_CA_DIR = "/etc/stowage/object-store-ca"

_UNSAFE = re.compile(r"[^a-z0-9_]")
#: Every tenant database and role name starts with this (and nothing else of the operator's).
DATABASE_PREFIX = "stowage_"


def database_name(namespace: Namespace, name: TenantName) -> str:
    """``stowage_<namespace>_<name>``, shortened with a hash to PostgreSQL's 63 bytes."""
    raw = f"{DATABASE_PREFIX}{namespace}_{name}"
    safe = _UNSAFE.sub("_", raw.lower())
    if len(safe) <= 63 and safe == raw:
        return safe
    digest = hashlib.sha256(raw.encode()).hexdigest()[:10]
    return f"{safe[:52]}_{digest}"


def scratch_database_name(namespace: Namespace, name: TenantName) -> str:
    """The restore drill's scratch database: ``<database>_drill``, hashed past 63 bytes."""
    database = database_name(namespace, name)
    if len(database) <= 57:
        return f"{database}_drill"
    digest = hashlib.sha256(f"{database}/drill".encode()).hexdigest()[:10]
    return f"{database[:46]}_{digest}_drill"


def role_name(namespace: Namespace, name: TenantName) -> str:
    """The tenant's login role; the same string as its database."""
    return database_name(namespace, name)


def worker_name(name: TenantName) -> str:
    """Deployment, Service, NetworkPolicy and PodDisruptionBudget name."""
    return f"tenant-{name}-worker"


def secret_name(name: TenantName) -> str:
    return f"tenant-{name}-db"


def object_store_secret_name(name: TenantName) -> str:
    """The Region's object-store credentials, copied where the tenant's worker can read them."""
    return f"tenant-{name}-object-store"


def policy_name(name: TenantName) -> str:
    return f"tenant-{name}-policy"


def backup_name(name: TenantName) -> str:
    """The CronJob that backs the tenant's database up."""
    return f"tenant-{name}-backup"


def drill_name(name: TenantName) -> str:
    """The CronJob that restores the newest backup into the scratch database."""
    return f"tenant-{name}-drill"


def endpoint(namespace: Namespace, name: TenantName) -> str:
    return f"{worker_name(name)}.{namespace}.svc:{WORKER_PORT}"


def instance(ref: TenantRef, region: Region) -> str:
    """Which worker a gateway must reach (``stowage.wire.INSTANCE_KEY``): this Tenant object
    on this database.

    24 hex characters of a digest of the Tenant's uid, its Region and the database
    server and name, so it changes when the Tenant is created again (a restore of the
    resource) or moves to another Region or server, and a worker of the old place still
    behind a stale endpoint refuses the gateway's calls instead of serving old data.
    """
    where = f"{ref.uid}\n{region.name}\n{region.host}:{region.port}\n"
    where += database_name(ref.namespace, ref.name)
    return hashlib.sha256(where.encode()).hexdigest()[:24]


def labels(name: TenantName) -> dict[str, str]:
    """Labels on every object the operator creates for a Tenant (and the worker's selector)."""
    return {
        "app.kubernetes.io/name": "stowage-worker",
        "app.kubernetes.io/instance": worker_name(name),
        "app.kubernetes.io/component": "tenant-worker",
        "app.kubernetes.io/managed-by": "stowage-operator",
        "stowage.dev/tenant": name,
    }


def selector(name: TenantName) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "stowage-worker",
        "stowage.dev/tenant": name,
    }
