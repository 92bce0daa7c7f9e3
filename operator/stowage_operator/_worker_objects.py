"""The tenant worker's objects: policy ConfigMap, Deployment, Service, NetworkPolicy, PDB.

``apply`` brings them to a Tenant's spec (the PodDisruptionBudget only above
one replica); ``delete`` removes them with the Tenant. The spec is validated,
and its policy ConfigMap rendered, once per generation: a spec changes only
with its generation, and rendering it is most of a quiet resync pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stowage_operator import _manifests, _naming, _spec
from stowage_operator._applying import Applier
from stowage_operator._settings import OperatorSettings
from stowage_operator._types import Region, TenantRef, Trigger

# (apiVersion, kind) of the worker objects, in the order they are deleted.
WORKER_KINDS = (
    ("apps/v1", "Deployment"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
)


class WorkerObjects:
    """Applies and deletes one Tenant's worker objects; remembers each spec it validated."""

    def __init__(self, applier: Applier, settings: OperatorSettings) -> None:
        self._applier = applier
        self._settings = settings
        # Per Tenant, the generation whose spec passed validation and its policy ConfigMap.
        self._spec_seen: dict[tuple[str, str], tuple[str, int, Mapping[str, Any]]] = {}

    def policy(self, ref: TenantRef, spec: Mapping[str, Any]) -> Mapping[str, Any]:
        """The policy ConfigMap of a spec that passed validation, once per generation."""
        key = (ref.namespace, ref.name)
        seen = self._spec_seen.get(key)
        if seen is not None and seen[:2] == (ref.uid, ref.generation):
            return seen[2]
        _spec.validate(spec)
        config_map = _manifests.config_map(ref, spec)
        self._spec_seen[key] = (ref.uid, ref.generation, config_map)
        return config_map

    async def apply(
        self, ref: TenantRef, spec: Mapping[str, Any], region: Region, trigger: Trigger
    ) -> str:
        """Apply the worker's objects; the ``WorkerReady`` message."""
        apply = self._applier.apply
        await apply(self.policy(ref, spec), trigger)
        deployment = await apply(_manifests.deployment(ref, spec, region, self._settings), trigger)
        await apply(_manifests.service(ref), trigger)
        await apply(_manifests.network_policy(ref, self._settings), trigger)
        replicas = _manifests.replicas(spec)
        if replicas > 1:
            await apply(_manifests.pod_disruption_budget(ref), trigger)
        else:
            await self._applier.delete(
                "policy/v1",
                "PodDisruptionBudget",
                ref.namespace,
                _naming.worker_name(ref.name),
                trigger,
            )
        available = int((deployment.get("status") or {}).get("availableReplicas") or 0)
        return (
            f"Deployment, Service, NetworkPolicy and policy ConfigMap match generation "
            f"{ref.generation}; {available}/{replicas} replicas available "
            "(pod availability is the Deployment's to report and does not gate Ready)"
        )

    async def delete(self, ref: TenantRef) -> None:
        """Delete the worker's objects, asking the API server for each."""
        name = _naming.worker_name(ref.name)
        for api_version, kind in WORKER_KINDS:
            obj_name = _naming.policy_name(ref.name) if kind == "ConfigMap" else name
            await self._applier.delete(api_version, kind, ref.namespace, obj_name, None)

    def forget(self, ref: TenantRef) -> None:
        """Forget the Tenant's validated spec (it was deleted)."""
        self._spec_seen.pop((ref.namespace, ref.name), None)


__all__ = ["WORKER_KINDS", "WorkerObjects"]
