"""Applying and deleting a Tenant's objects, skipping what their watches show already done.

Every object the operator writes for a Tenant (its Secret, the worker's
objects, the backup CronJobs) goes through one ``Applier``: with ``Owned``
(the watches of those objects) a resync re-applies only what changed or went
missing, and a reconcile deletes only what exists; without it, everything is
applied and deleted every time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stowage_operator._kube import Kube
from stowage_operator._owned import Owned
from stowage_operator._types import Trigger


class Applier:
    """Server-side apply and delete, through the owned-object cache when there is one."""

    def __init__(self, kube: Kube, owned: Owned | None = None) -> None:
        self._kube = kube
        # The Tenants' own objects from their watches; without them, applied every pass.
        self._owned = owned

    async def apply(
        self, obj: Mapping[str, Any], trigger: Trigger, live: Mapping[str, Any] | None = None
    ) -> Mapping[str, Any]:
        """Server-side apply; a resync skips an object that is as it was last applied
        (``live`` if the caller read it, else its watch)."""
        owned = self._owned
        if owned is None:
            return await self._kube.apply(obj)
        if trigger is Trigger.RESYNC and (current := owned.unchanged(obj, live)) is not None:
            return current
        stored = await self._kube.apply(obj)
        owned.applied(obj, stored)
        return stored

    async def delete(
        self, api_version: str, kind: str, namespace: str, name: str, trigger: Trigger | None
    ) -> None:
        """Delete; a reconcile skips an object its watch shows as gone (a new Tenant has no
        PodDisruptionBudget or CronJobs to delete). Deleting the Tenant (``trigger`` None)
        always asks the API server: an object made a moment ago may not be watched yet."""
        owned = self._owned
        if owned is not None:
            if trigger is not None and owned.absent(api_version, kind, namespace, name):
                return
            owned.forget(api_version, kind, namespace, name)
        await self._kube.delete(api_version, kind, namespace, name)


__all__ = ["Applier"]
