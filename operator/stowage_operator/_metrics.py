"""The operator's Prometheus metrics (module-level, in the default registry)."""

from __future__ import annotations

import contextlib

from prometheus_client import Counter, Gauge, Histogram

from stowage_operator._types import BackupFacts

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

# Backups: read from the Tenant's status.backup (which the finished Jobs fill), so they
# survive an operator restart. A series exists only while the Tenant's backups are
# scheduled and the fact is known.
BACKUP_LAST_SUCCESS = Gauge(
    "stowage_backup_last_success_timestamp_seconds",
    "When the newest successful backup of the Tenant was taken (its snapshot), Unix seconds.",
    ["namespace", "tenant"],
)
BACKUP_SIZE = Gauge(
    "stowage_backup_size_bytes",
    "Size of the newest successful backup archive of the Tenant.",
    ["namespace", "tenant"],
)
BACKUP_LAST_DRILL_SUCCESS = Gauge(
    "stowage_backup_last_drill_success",
    "1 when the Tenant's newest restore drill passed, 0 when it failed.",
    ["namespace", "tenant"],
)
BACKUP_LAST_DRILL = Gauge(
    "stowage_backup_last_drill_timestamp_seconds",
    "When the Tenant's newest restore drill finished (passed or failed), Unix seconds.",
    ["namespace", "tenant"],
)
BACKUP_SCHEDULED_SINCE = Gauge(
    "stowage_backup_scheduled_since_timestamp_seconds",
    "Since when the Tenant's backup CronJobs have been scheduled without a break, Unix seconds.",
    ["namespace", "tenant"],
)


def report_backup(namespace: str, tenant: str, facts: BackupFacts) -> None:
    """Set the Tenant's backup series to ``facts``; remove those it does not know."""
    drill_success = (
        None if facts.last_drill_succeeded is None else float(facts.last_drill_succeeded)
    )
    for gauge, value in (
        (BACKUP_LAST_SUCCESS, facts.last_success),
        (BACKUP_SIZE, facts.size_bytes),
        (BACKUP_LAST_DRILL, facts.last_drill),
        (BACKUP_LAST_DRILL_SUCCESS, drill_success),
        (BACKUP_SCHEDULED_SINCE, facts.scheduled_since),
    ):
        if value is None:
            with contextlib.suppress(KeyError):
                gauge.remove(namespace, tenant)
        else:
            gauge.labels(namespace, tenant).set(value)


def forget_backup(namespace: str, tenant: str) -> None:
    """No backup series for a Tenant whose backups are off or that is gone."""
    report_backup(namespace, tenant, BackupFacts())
