"""The worker's process settings, built once at the entry point."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

#: Set by the supervisor in the environment of each worker process it starts.
CHILD_OF_ENV = "STOWAGE_WORKER_CHILD_OF"


@dataclass(frozen=True)
class WorkerSettings:
    """How one worker process runs. The tenant's rules live in its policy file."""

    tenant: str
    database_url: str
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
    db_pool_size: int = 20
    db_max_overflow: int = 10
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

    @property
    def pool(self) -> tuple[int, int]:
        """(pool size, overflow) of one process: the totals shared out among the processes."""
        n = max(1, self.processes)
        return max(2, -(-self.db_pool_size // n)), -(-self.db_max_overflow // n)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> WorkerSettings:
        """Read ``STOWAGE_*`` variables; explicit non-None overrides win."""
        e = os.environ if env is None else env
        values: dict[str, object] = {}
        if "STOWAGE_TENANT" in e:
            values["tenant"] = e["STOWAGE_TENANT"]
        if "STOWAGE_DATABASE_URL" in e:
            values["database_url"] = e["STOWAGE_DATABASE_URL"]
        if "STOWAGE_WORKER_LISTEN" in e:
            values["listen"] = e["STOWAGE_WORKER_LISTEN"]
        if "STOWAGE_METRICS_PORT" in e:
            values["metrics_port"] = int(e["STOWAGE_METRICS_PORT"])
        if "STOWAGE_POLICY_FILE" in e:
            values["policy_file"] = Path(e["STOWAGE_POLICY_FILE"])
        if "STOWAGE_POLICY_CHECK_INTERVAL" in e:
            values["policy_check_interval"] = float(e["STOWAGE_POLICY_CHECK_INTERVAL"])
        if "STOWAGE_PURGE_INTERVAL" in e:
            values["purge_interval"] = float(e["STOWAGE_PURGE_INTERVAL"])
        if "STOWAGE_WORKER_PROCESSES" in e:
            values["processes"] = int(e["STOWAGE_WORKER_PROCESSES"])
        if CHILD_OF_ENV in e:
            values["parent_pid"] = int(e[CHILD_OF_ENV])
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "tenant" not in values:
            values["tenant"] = "default"
        if "database_url" not in values:
            raise ValueError("a database URL is required (--database-url or STOWAGE_DATABASE_URL)")
        if int(str(values.get("processes", 1))) < 1:
            raise ValueError("--processes (STOWAGE_WORKER_PROCESSES) must be at least 1")
        return cls(**values)  # type: ignore[arg-type]
