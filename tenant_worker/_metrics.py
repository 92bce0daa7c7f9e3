"""The worker's Prometheus metrics (process-wide, like the registry they live in).

With several worker processes (``--processes``) each writes its samples to
``PROMETHEUS_MULTIPROC_DIR`` and the supervising parent serves them, summed
(counters, histograms) or combined as each gauge's ``multiprocess_mode`` says.
Every process measures the same tenant-wide values, so those gauges show the
most recent measurement of a live process; a process that dies leaves them.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RPCS = Counter(
    "stowage_worker_rpcs_total", "RPCs handled, by method and status code", ["method", "code"]
)
RPC_SECONDS = Histogram(
    "stowage_worker_rpc_duration_seconds",
    "RPC latency by method",
    ["method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PURGED = Counter("stowage_worker_purged_objects_total", "Expired objects purged")
POLICY_RELOADS = Counter(
    "stowage_worker_policy_reloads_total", "Policy file reloads by outcome", ["outcome"]
)
DATABASE_UP = Gauge(
    "stowage_worker_database_up",
    "1 when the last database check succeeded (in every live process)",
    multiprocess_mode="livemin",
)
PROCESS_RPCS = Gauge(
    "stowage_worker_process_rpcs",
    "RPCs handled by each live worker process since it started (labelled pid with --processes)",
    multiprocess_mode="liveall",
)
# Refreshed by the housekeeping loop (at start and after every purge pass), never per call.
QUOTA_USED = Gauge(
    "stowage_worker_quota_used",
    "What the tenant stores, by limit: objects, or bytes of object data",
    ["limit"],
    multiprocess_mode="livemostrecent",
)
QUOTA_LIMIT = Gauge(
    "stowage_worker_quota_limit",
    "The tenant's quota by limit: quotas.maxObjects (objects) or quotas.maxBytes (bytes)",
    ["limit"],
    multiprocess_mode="livemostrecent",
)
QUOTA_USED_RATIO = Gauge(
    "stowage_worker_quota_used_ratio",
    "Used over the quota, by limit (above 1 when a quota was lowered below what is stored)",
    ["limit"],
    multiprocess_mode="livemostrecent",
)
EXPIRED_OBJECTS = Gauge(
    "stowage_worker_expired_objects",
    "Expired objects still stored after the last purge pass (counted up to 100000)",
    multiprocess_mode="livemostrecent",
)
PURGE_LAST_SUCCESS = Gauge(
    "stowage_worker_purge_last_success_timestamp_seconds",
    "Unix time the last complete purge pass finished; 0 before the first",
    multiprocess_mode="max",
)
