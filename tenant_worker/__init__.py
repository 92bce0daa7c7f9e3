"""The tenant worker: the gRPC service that alone owns one tenant's database.

It stores versioned JSON objects per internal user, resolves identities,
enforces the tenant's quotas, retention and collection schemas, and serves
export and erasure of a user's data. It never sees OAuth tokens; the gateway
passes the verified internal user id in call metadata.

Layers (``.importlinter`` keeps them): ``_cli``/``_processes``/``_server``
(entry points) → ``rpc`` (gRPC ↔ domain) → ``objects``, ``people``,
``housekeeping``, ``spaces`` (the services, independent of each other) → ``storage``
(sessions, policy, quotas, audit, retries, the SQLAlchemy adapter).
``_policy`` and ``_records`` are plain values: no I/O there.
"""

from tenant_worker._erasures import ReplayedErasure, replay_erasures
from tenant_worker._migrate import migrate
from tenant_worker._policy import TenantPolicy, load_policy
from tenant_worker._settings import WorkerSettings

__all__ = [
    "ReplayedErasure",
    "TenantPolicy",
    "WorkerSettings",
    "load_policy",
    "migrate",
    "replay_erasures",
]
