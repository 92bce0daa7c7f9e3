"""Components' HTML held in ConfigMaps (``htmlFrom``), as the kube source sees them. No I/O here.

A component too large to inline names a key of a ConfigMap in its Tenant's
namespace, labelled ``stowage.dev/component=true``
(:data:`stowage.apps.BUNDLE_SELECTOR`). The kube source lists and watches
those ConfigMaps only (one list, then one watch, beside the Tenants'), keeps
their data here, and resolves each Tenant's components against it when the
Tenant or one of its ConfigMaps changes: no tool call and no
``resources/read`` ever asks the API server.

A Tenant is resolved only against its own namespace's ConfigMaps. A
component whose ConfigMap or key is missing, or whose HTML is refused (over
:data:`stowage.apps.MAX_BUNDLE_BYTES`, an undeclared origin), is not served;
the Tenant's other components and tools are, and a log line names the Tenant,
the field (``spec.components[i].htmlFrom``) and the reason.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import Any

from gateway._types import Tenant
from stowage import apps
from stowage.apps import ConfigMapKeyRef
from stowage.tenant_spec import resolve_components

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name)


def bundles_path(namespace: str | None) -> str:
    """The ConfigMaps the source reads: one namespace's, or all of them."""
    return (
        "/api/v1/configmaps" if namespace is None else f"/api/v1/namespaces/{namespace}/configmaps"
    )


def references(tenant: Tenant) -> frozenset[str]:
    """The names of the ConfigMaps the tenant's components name (in its own namespace)."""
    return frozenset(c.html_from.name for c in tenant.spec.components if c.html_from is not None)


class Bundles:
    """The labelled ConfigMaps' data by (namespace, name), kept one event at a time."""

    def __init__(self) -> None:
        self._data: dict[Key, tuple[str, Mapping[str, str], frozenset[str]]] = {}
        #: Why the ConfigMaps could not be read, until they were listed once.
        self.unreadable: str | None = "not listed yet"

    def keys(self) -> set[Key]:
        return set(self._data)

    def put(self, body: Mapping[str, Any]) -> bool:
        """Take a ConfigMap as it now is; True when its data changed."""
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        version = str(meta.get("resourceVersion", ""))
        known = self._data.get(key)
        if known is not None and version and known[0] == version:
            return False
        data = {str(k): v for k, v in (body.get("data") or {}).items() if isinstance(v, str)}
        binary = frozenset(str(k) for k in (body.get("binaryData") or {}))
        self._data[key] = (version, data, binary)
        return known is None or (known[1], known[2]) != (data, binary)

    def remove(self, key: Key) -> bool:
        return self._data.pop(key, None) is not None

    def reader(self, namespace: str) -> Callable[[ConfigMapKeyRef], str]:
        """What a Tenant in ``namespace`` may read: its own namespace's ConfigMaps only."""

        def read(ref: ConfigMapKeyRef) -> str:
            found = self._data.get((namespace, ref.name))
            if found is None:
                if self.unreadable is not None:
                    raise LookupError(f"ConfigMaps cannot be read: {self.unreadable}")
                raise LookupError(
                    f"ConfigMap {namespace}/{ref.name} not found (it must exist in the "
                    f"Tenant's namespace and carry the label {apps.BUNDLE_SELECTOR})"
                )
            _, data, binary = found
            if ref.key in data:
                return data[ref.key]
            if ref.key in binary:
                raise LookupError(
                    f"ConfigMap {namespace}/{ref.name} holds {ref.key!r} under binaryData; "
                    "put the HTML under data"
                )
            raise LookupError(f"ConfigMap {namespace}/{ref.name} has no key {ref.key!r}")

        return read


def resolved(tenant: Tenant, namespace: str, bundles: Bundles) -> Tenant:
    """``tenant`` with its ``htmlFrom`` components' HTML from ``bundles``; problems logged."""
    spec, problems = resolve_components(tenant.spec, bundles.reader(namespace))
    for problem in problems:
        log.error(
            "Tenant %s/%s: component not served: %s",
            namespace,
            tenant.name,
            problem,
            extra={"tenant": tenant.name},
        )
    return dataclasses.replace(tenant, spec=spec) if spec is not tenant.spec else tenant


__all__ = ["Bundles", "bundles_path", "references", "resolved"]
