"""The tenant worker's objects: policy ConfigMap, Deployment, Service, NetworkPolicy, PDB,
and the Region's object-store credentials when it has ``spec.objectStore``.

``apply`` brings them to a Tenant's spec (the PodDisruptionBudget only above
one replica); ``delete`` removes them with the Tenant. The spec is validated,
and its policy ConfigMap rendered, once per generation: a spec changes only
with its generation, and rendering it is most of a quiet resync pass. The
ConfigMaps its components take their HTML from (``htmlFrom``) can change
without it: ``check_bundles`` reads them on every pass (one GET each, only for
Tenants that name any) and checks their HTML when one moved.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stowage_operator import _manifests, _naming, _spec
from stowage_operator._applying import Applier
from stowage_operator._kube import Kube
from stowage_operator._regions import Regions
from stowage_operator._settings import OperatorSettings
from stowage_operator._types import ObjectStoreCredentials, Region, TenantRef, Trigger

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

    def __init__(
        self,
        applier: Applier,
        settings: OperatorSettings,
        kube: Kube,
        regions: Regions | None = None,
    ) -> None:
        self._applier = applier
        self._settings = settings
        self._kube = kube
        # The Regions' object-store credentials (spec.objectStore), read through their cache.
        self._regions = regions or Regions(kube, settings)
        #: (namespace, name) of the Tenants whose object-store Secret this operator applied.
        self._with_store: set[tuple[str, str]] = set()
        # Per Tenant, the generation whose spec passed validation, its policy ConfigMap
        # and the ConfigMaps its components take their HTML from.
        self._spec_seen: dict[
            tuple[str, str], tuple[str, int, Mapping[str, Any], frozenset[str]]
        ] = {}
        # Per Tenant, the generation and those ConfigMaps' versions that passed the checks.
        self._bundles_seen: dict[tuple[str, str], tuple[str, int, tuple[str, ...]]] = {}

    def policy(self, ref: TenantRef, spec: Mapping[str, Any]) -> Mapping[str, Any]:
        """The policy ConfigMap of a spec that passed validation, once per generation.

        It keeps a component's ``htmlFrom`` reference, never the HTML."""
        key = (ref.namespace, ref.name)
        seen = self._spec_seen.get(key)
        if seen is not None and seen[:2] == (ref.uid, ref.generation):
            return seen[2]
        _spec.validate(spec)
        config_map = _manifests.config_map(ref, spec)
        names = _spec.bundle_names(spec)
        self._spec_seen[key] = (ref.uid, ref.generation, config_map, names)
        return config_map

    async def check_bundles(self, ref: TenantRef, spec: Mapping[str, Any]) -> None:
        """Check the HTML of the components held in ConfigMaps (``htmlFrom``), read by name
        from the Tenant's namespace on every pass (a ConfigMap changes without the Tenant):
        ComponentNotFound or InvalidSpec naming ``spec.components[i].htmlFrom``. The checks
        run again only when a ConfigMap's version moved."""
        self.policy(ref, spec)
        names = self._spec_seen[(ref.namespace, ref.name)][3]
        if not names:
            return
        bundles = {
            name: await self._kube.get("v1", "ConfigMap", ref.namespace, name)
            for name in sorted(names)
        }
        versions = tuple(
            str(((b or {}).get("metadata") or {}).get("resourceVersion") or "")
            for b in bundles.values()
        )
        key = (ref.namespace, ref.name)
        if self._bundles_seen.get(key) == (ref.uid, ref.generation, versions):
            return
        _spec.validate(spec, ref.namespace, bundles)
        self._bundles_seen[key] = (ref.uid, ref.generation, versions)

    async def apply(
        self, ref: TenantRef, spec: Mapping[str, Any], region: Region, trigger: Trigger
    ) -> str:
        """Apply the worker's objects; the ``WorkerReady`` message."""
        apply = self._applier.apply
        await apply(self.policy(ref, spec), trigger)
        object_store = await self._object_store(ref, region, trigger)
        deployment = await apply(
            _manifests.deployment(ref, spec, region, self._settings, object_store), trigger
        )
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

    async def _object_store(
        self, ref: TenantRef, region: Region, trigger: Trigger
    ) -> ObjectStoreCredentials | None:
        """The Region's object-store credentials, copied into the tenant's own Secret (a pod
        reads Secrets of its namespace only); that Secret is removed when the Region has no
        object store. A resync re-applies it only when it differs from what is stored."""
        name = _naming.object_store_secret_name(ref.name)
        creds = await self._regions.object_store(region, trigger)
        key = (ref.namespace, ref.name)
        if creds is None:
            # Secrets are not watched (_owned): delete only one this operator applied, or
            # on the first pass after it started, so a Region without an object store
            # costs no API call per pass.
            if key in self._with_store or trigger is Trigger.RESUME:
                await self._applier.delete("v1", "Secret", ref.namespace, name, None)
                self._with_store.discard(key)
            return None
        self._with_store.add(key)
        secret = _manifests.object_store_secret(ref, creds)
        live = None
        if trigger is Trigger.RESYNC:
            live = await self._kube.get("v1", "Secret", ref.namespace, name)
        await self._applier.apply(secret, trigger, live)
        return creds

    async def delete(self, ref: TenantRef) -> None:
        """Delete the worker's objects, asking the API server for each."""
        name = _naming.worker_name(ref.name)
        for api_version, kind in WORKER_KINDS:
            obj_name = _naming.policy_name(ref.name) if kind == "ConfigMap" else name
            await self._applier.delete(api_version, kind, ref.namespace, obj_name, None)
        secret = _naming.object_store_secret_name(ref.name)
        await self._applier.delete("v1", "Secret", ref.namespace, secret, None)

    def forget(self, ref: TenantRef) -> None:
        """Forget the Tenant's validated spec (it was deleted)."""
        self._spec_seen.pop((ref.namespace, ref.name), None)
        self._bundles_seen.pop((ref.namespace, ref.name), None)
        self._with_store.discard((ref.namespace, ref.name))


__all__ = ["WORKER_KINDS", "WorkerObjects"]
