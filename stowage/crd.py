"""The custom resources' names: API group, version, kinds and plurals. No I/O here.

The CRD manifests (``charts/stowage/crds/``) declare Region and Tenant; every
Python reader and writer of them (the gateway's Tenant source, the operator's
handlers and Kubernetes client, the test harnesses and benchmarks) imports the
names from here, so the group/version is written once. A test compares these
names with the chart's CRDs.
"""

from __future__ import annotations

#: The API group of Stowage's custom resources.
GROUP = "stowage.dev"
#: The one version the CRDs serve and store.
VERSION = "v1alpha1"
#: ``apiVersion`` of a Region or Tenant: ``stowage.dev/v1alpha1``.
API_VERSION = f"{GROUP}/{VERSION}"

#: A tenant's app: namespaced.
TENANT_KIND = "Tenant"
TENANT_PLURAL = "tenants"
#: A PostgreSQL server in one data-residency region: cluster-scoped.
REGION_KIND = "Region"
REGION_PLURAL = "regions"


def collection_path(plural: str, namespace: str | None = None) -> str:
    """The API path of a kind's collection: in ``namespace``, or cluster-wide when None.

    ``collection_path(TENANT_PLURAL, "acme")`` is
    ``/apis/stowage.dev/v1alpha1/namespaces/acme/tenants``.
    """
    within = "" if namespace is None else f"/namespaces/{namespace}"
    return f"/apis/{API_VERSION}{within}/{plural}"


__all__ = [
    "API_VERSION",
    "GROUP",
    "REGION_KIND",
    "REGION_PLURAL",
    "TENANT_KIND",
    "TENANT_PLURAL",
    "VERSION",
    "collection_path",
]
