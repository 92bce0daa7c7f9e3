"""The operator's Prometheus metrics (module-level, in the default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECONCILIATIONS = Counter(
    "stowage_operator_reconciliations",
    "Tenant reconciliations by trigger and outcome (ok, retry, invalid, error).",
    ["trigger", "outcome"],
)
DURATION = Histogram(
    "stowage_operator_reconcile_duration_seconds",
    "Time one Tenant reconciliation took.",
    ["trigger"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
ERRORS = Counter(
    "stowage_operator_errors",
    "Failed reconciliations by Tenant and reason (the condition's reason).",
    ["namespace", "tenant", "reason"],
)
REPAIRS = Counter(
    "stowage_operator_repairs",
    "Drift the operator repaired: what was missing or changed.",
    ["what"],
)
DELETIONS = Counter(
    "stowage_operator_deletions",
    "Tenants cleaned up, by deletion policy.",
    ["policy"],
)
TENANTS_READY = Gauge(
    "stowage_operator_tenant_ready",
    "1 when the Tenant's Ready condition is True.",
    ["namespace", "tenant"],
)
