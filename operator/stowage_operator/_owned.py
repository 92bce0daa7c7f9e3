"""The objects the operator applies for its Tenants, as the API server has them, by watches.

A resync pass exists to repair drift: a deleted Service, a hand-edited
Deployment. Applying every object of every Tenant on every pass found that
drift, at a dozen API calls per Tenant per pass, almost all of them no-ops.
Here one watch per kind (``_watches``; the operator's label, across
namespaces) keeps each object's ``resourceVersion``, and the operator
remembers what it applied and the version the API server answered with. A
resync re-applies an object only when that memory no longer holds: the
object changed (any write, by anyone, moves its version), is gone, or the
desired object is different. While a kind's watch is not current, every
object of that kind is applied as before.

Secrets are not watched: ``list`` and ``watch`` on Secrets would let the
operator read every Secret in the cluster (RBAC cannot narrow them by label).
The caller reads the Tenant's one Secret and passes it to ``unchanged``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from stowage_operator._kube import Kube
from stowage_operator._types import Body
from stowage_operator._watches import Watched

#: Every object the operator creates for a Tenant carries this label (``_naming.labels``).
SELECTOR = "app.kubernetes.io/managed-by=stowage-operator"

#: The kinds the operator applies, by (apiVersion, kind).
KINDS = (
    ("v1", "ConfigMap"),
    ("v1", "Service"),
    ("apps/v1", "Deployment"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("policy/v1", "PodDisruptionBudget"),
    ("batch/v1", "CronJob"),
)

_Ref = tuple[str, str, str, str]  # apiVersion, kind, namespace, name


def _slim(obj: Body) -> Body:
    """What readers need: identity and version, and a Deployment's available replicas."""
    meta = obj.get("metadata") or {}
    kept: Body = {
        "metadata": {
            key: meta[key]
            for key in ("namespace", "name", "uid", "resourceVersion", "labels")
            if key in meta
        }
    }
    status = obj.get("status") or {}
    if "availableReplicas" in status:
        kept["status"] = {"availableReplicas": status["availableReplicas"]}
    return kept


def _ref(obj: Mapping[str, Any]) -> _Ref:
    meta = obj["metadata"]
    return (str(obj["apiVersion"]), str(obj["kind"]), str(meta["namespace"]), str(meta["name"]))


def _digest(obj: Mapping[str, Any]) -> bytes:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def _version(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


class Owned:
    """The operator's objects in the namespaces it watches (``patterns``, as kopf's)."""

    def __init__(self, kube: Kube, patterns: tuple[str, ...] = ()) -> None:
        self._kinds = {
            (api_version, kind): Watched(kube, api_version, kind, SELECTOR, patterns, slim=_slim)
            for api_version, kind in KINDS
        }
        # What was last applied (its digest) and the version the API server answered with.
        self._applied: dict[_Ref, tuple[bytes, str]] = {}

    def start(self) -> None:
        for watched in self._kinds.values():
            watched.start()

    async def stop(self) -> None:
        for watched in self._kinds.values():
            await watched.stop()

    def _watched(self, api_version: str, kind: str) -> Watched | None:
        watched = self._kinds.get((api_version, kind))
        return watched if watched is not None and watched.synced else None

    def unchanged(
        self, obj: Mapping[str, Any], live: Mapping[str, Any] | None = None
    ) -> Mapping[str, Any] | None:
        """The live object if it is still exactly what the operator last applied as ``obj``.

        ``live`` is the object as the caller read it; without it, as watched.
        """
        api_version, kind, namespace, name = _ref(obj)
        if live is None:
            watched = self._watched(api_version, kind)
            live = watched.get(namespace, name) if watched is not None else None
        if live is None:
            return None
        last = self._applied.get((api_version, kind, namespace, name))
        if last is None or last != (_digest(obj), _version(live)):
            return None
        return live

    def applied(self, obj: Mapping[str, Any], stored: Mapping[str, Any]) -> None:
        """Remember that ``obj`` was applied and the API server stored it as ``stored``."""
        self._applied[_ref(obj)] = (_digest(obj), _version(stored))

    def forget(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        self._applied.pop((api_version, kind, namespace, name), None)

    def absent(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        """Whether the object is known not to exist (False while its kind is not watched)."""
        watched = self._watched(api_version, kind)
        return watched is not None and watched.get(namespace, name) is None
