"""Status conditions: merging new ones into old ones. No I/O here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from stowage_operator._types import Condition, ConditionBody

DATABASE_READY = "DatabaseReady"
WORKER_READY = "WorkerReady"
READY = "Ready"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge(
    old: Sequence[ConditionBody] | None, new: Iterable[Condition], generation: int
) -> list[ConditionBody]:
    """New conditions, keeping ``lastTransitionTime`` where the status did not change."""
    previous = {c.get("type"): c for c in old or ()}
    merged: dict[str, ConditionBody] = {str(k): v for k, v in previous.items() if k is not None}
    for condition in new:
        before = previous.get(condition.type)
        since = (
            before.get("lastTransitionTime", _now())
            if before is not None and before.get("status") == condition.status
            else _now()
        )
        merged[condition.type] = {
            "type": condition.type,
            "status": condition.status,
            "reason": condition.reason,
            "message": condition.message,
            "observedGeneration": generation,
            "lastTransitionTime": since,
        }
    order = {DATABASE_READY: 0, WORKER_READY: 1, READY: 2}
    return sorted(merged.values(), key=lambda c: (order.get(c.get("type", ""), 9), c.get("type")))
