"""A Tenant's status: its conditions, endpoint and readiness, written only when changed.

A periodic resync repairs drift; one transient error there (a dropped
connection, a busy API server) does not make a serving tenant unready. Only
``RESYNC_FAILURES_BEFORE_UNREADY`` failures in a row do.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from stowage.crd import API_VERSION, TENANT_KIND
from stowage_operator import _conditions, _metrics, _naming
from stowage_operator._conditions import DATABASE_READY, READY, WORKER_READY
from stowage_operator._errors import OperatorError, TemporaryError
from stowage_operator._kube import Kube
from stowage_operator._types import Condition, ConditionBody, TenantRef, Trigger

log = logging.getLogger(__name__)

#: A Ready tenant is reported unready after this many failed resyncs in a row.
RESYNC_FAILURES_BEFORE_UNREADY = 3


def _is_ready(status: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == READY and c.get("status") == "True" for c in status.get("conditions") or ()
    )


class TenantStatus:
    """Reports each Tenant's reconcile in its status and the readiness metric."""

    def __init__(self, kube: Kube) -> None:
        self._kube = kube
        # Consecutive failed resyncs of Ready tenants.
        self._resync_failures: dict[tuple[str, str], int] = {}

    async def report_ready(
        self,
        ref: TenantRef,
        old_status: Mapping[str, Any],
        status: dict[str, Any],
        conditions: list[Condition],
    ) -> list[ConditionBody]:
        """Ready, with the worker's endpoint for the gateways; the conditions as written."""
        self._resync_failures.pop((ref.namespace, ref.name), None)
        status["endpoint"] = _naming.endpoint(ref.namespace, ref.name)
        conditions.append(
            Condition(
                READY,
                "True",
                "Reconciled",
                f"generation {ref.generation} applied; route to {status['endpoint']}",
            )
        )
        return await self._report(ref, old_status, status, conditions, ready=True)

    async def report_failure(
        self,
        ref: TenantRef,
        old_status: Mapping[str, Any],
        status: Mapping[str, Any],
        conditions: list[Condition],
        stage: str,
        e: OperatorError,
        trigger: Trigger,
    ) -> None:
        """Say in the status what failed, unless a resync of a Ready tenant hit a passing fault."""
        extra = {"tenant": ref.name, "namespace": ref.namespace, "trigger": trigger.value}
        key = (ref.namespace, ref.name)
        if (
            trigger is Trigger.RESYNC
            and isinstance(e, TemporaryError)
            and await self._ready_now(ref, old_status)
        ):
            failures = self._resync_failures.get(key, 0) + 1
            self._resync_failures[key] = failures
            if failures < RESYNC_FAILURES_BEFORE_UNREADY:
                log.warning(
                    "resync failed (%d of %d before the tenant is reported unready): %s",
                    failures,
                    RESYNC_FAILURES_BEFORE_UNREADY,
                    e.message,
                    extra=extra,
                )
                return
        conditions.append(Condition(stage, "False", e.reason, e.message))
        if stage == DATABASE_READY:
            conditions.append(
                Condition(WORKER_READY, "False", "DatabaseNotReady", "waiting for the database")
            )
        conditions.append(Condition(READY, "False", e.reason, e.message))
        await self._report(ref, old_status, status, conditions, ready=False)
        log.warning("%s is False: %s", stage, e.message, extra=extra)

    def forget(self, ref: TenantRef) -> None:
        """Drop the Tenant's readiness metric (it was deleted)."""
        with contextlib.suppress(KeyError):
            _metrics.TENANTS_READY.remove(ref.namespace, ref.name)

    async def _report(
        self,
        ref: TenantRef,
        old_status: Mapping[str, Any],
        status: Mapping[str, Any],
        conditions: list[Condition],
        *,
        ready: bool,
    ) -> list[ConditionBody]:
        merged = _conditions.merge(old_status.get("conditions"), conditions, ref.generation)
        patch = {**status, "conditions": merged}
        # A resync of a settled Tenant finds its status as it left it: no write, and no
        # watch event for kopf (and the gateways watching Tenants) to process.
        if any(old_status.get(key) != value for key, value in patch.items()):
            await self._kube.patch_tenant_status(ref.namespace, ref.name, patch)
        _metrics.TENANTS_READY.labels(ref.namespace, ref.name).set(1 if ready else 0)
        return merged

    async def _ready_now(self, ref: TenantRef, seen: Mapping[str, Any]) -> bool:
        """Whether the Tenant is Ready in the API server now (the watch may lag behind)."""
        if _is_ready(seen):
            return True
        try:
            current = await self._kube.get(API_VERSION, TENANT_KIND, ref.namespace, ref.name)
        except OperatorError:
            return False
        return current is not None and _is_ready(current.get("status") or {})


__all__ = ["RESYNC_FAILURES_BEFORE_UNREADY", "TenantStatus"]
