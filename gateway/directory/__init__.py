"""The tenants the gateway serves, and the sources they come from.

``_directory`` holds the current set and the ``TenantSource`` protocol; the
sources are ``_tenant_file`` (YAML or JSON, read by ``_tenant_entries`` in a
short-lived process so a reload never holds the event loop) and
``_kube_source`` (Tenant resources, watched through ``_kube_client``, a small
httpx client, with ``_kube_config``: a kubeconfig or the pod's service
account; ``_kube_bundles`` holds the labelled ConfigMaps that components take
their HTML from, ``htmlFrom``).

It publishes ``Tenant`` values and nothing else: no tokens, no workers, no
HTTP replies; it imports neither the gate, the MCP surface nor ``gateway.auth``.
"""
