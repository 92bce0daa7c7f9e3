"""Tenants from Kubernetes: a read-only watch of Tenant resources (``stowage.dev/v1alpha1``).

A :class:`~gateway._directory.TenantSource`. A Tenant is routable once the
operator has published its worker's ``status.endpoint``, and stops being
routable as soon as it is marked for deletion. Auth, rate limits and
collections come from its spec, parsed exactly like the tenant file.

The source lists, publishes, then watches from the list's resourceVersion,
publishing the full set after every change. When the API cannot be read (or
the watch expires), it keeps the last published set, waits and lists again.
It only ever reads: the gateway's RBAC needs ``get``, ``list`` and ``watch``
on ``tenants.stowage.dev``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException

from gateway._errors import TenantConfigError
from gateway._tenant_file import parse_tenant
from gateway._types import Tenant, TenantName

log = logging.getLogger(__name__)

GROUP = "stowage.dev"
VERSION = "v1alpha1"
PLURAL = "tenants"

Key = tuple[str, str]  # (namespace, name)


def routable(body: Mapping[str, Any]) -> Tenant | None:
    """The gateway's view of one Tenant resource, or None when it must not be routed to."""
    meta = body.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return None
    endpoint = (body.get("status") or {}).get("endpoint")
    if not endpoint:
        return None
    name = str(meta.get("name", ""))
    try:
        return parse_tenant(name, body.get("spec") or {}, endpoint)
    except TenantConfigError as e:
        log.error(
            "Tenant %s/%s not routable: %s", meta.get("namespace"), name, e, extra={"tenant": name}
        )
        return None


def _by_name(bodies: Mapping[Key, Mapping[str, Any]]) -> dict[TenantName, Tenant]:
    """Routable tenants by name; a name used in two namespaces is served from the first."""
    tenants: dict[TenantName, Tenant] = {}
    for (namespace, name), body in sorted(bodies.items()):
        tenant = routable(body)
        if tenant is None:
            continue
        if tenant.name in tenants:
            log.error(
                "Tenant name %s is used in more than one namespace; ignoring %s/%s",
                name,
                namespace,
                name,
                extra={"tenant": name},
            )
            continue
        tenants[tenant.name] = tenant
    return tenants


class KubeTenantSource:
    """Watch Tenant resources in one namespace (or all) and publish the routable ones."""

    def __init__(
        self,
        kubeconfig: Path | None = None,
        namespace: str | None = None,
        retry_delay: float = 2.0,
        watch_timeout: int = 300,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.retry_delay = retry_delay
        self.watch_timeout = watch_timeout

    async def _client(self) -> client.ApiClient:
        configuration = client.Configuration()
        if self.kubeconfig is None:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            await config.load_kube_config(
                config_file=str(self.kubeconfig), client_configuration=configuration
            )
        return client.ApiClient(configuration)

    def _list_call(self, api: client.CustomObjectsApi) -> tuple[Callable[..., Any], list[Any]]:
        if self.namespace is None:
            return api.list_cluster_custom_object, [GROUP, VERSION, PLURAL]
        return api.list_namespaced_custom_object, [GROUP, VERSION, self.namespace, PLURAL]

    async def watch(self, publish: Callable[[Mapping[TenantName, Tenant]], None]) -> None:
        bodies: dict[Key, Mapping[str, Any]] = {}
        published: dict[TenantName, Tenant] | None = None

        def publish_if_changed() -> None:
            nonlocal published
            tenants = _by_name(bodies)
            if tenants != published:
                published = tenants
                log.info("tenants from Kubernetes", extra={"tenants": sorted(tenants)})
                publish(tenants)

        while True:
            try:
                async with await self._client() as api_client:
                    api = client.CustomObjectsApi(api_client)
                    call, args = self._list_call(api)
                    listed = await call(*args)
                    bodies = {
                        (b["metadata"].get("namespace", ""), b["metadata"]["name"]): b
                        for b in listed.get("items") or []
                    }
                    publish_if_changed()
                    version = listed["metadata"]["resourceVersion"]
                    while True:
                        stream = watch.Watch().stream(
                            call,
                            *args,
                            resource_version=version,
                            timeout_seconds=self.watch_timeout,
                            allow_watch_bookmarks=True,
                        )
                        async with stream:
                            async for event in stream:
                                kind, body = event["type"], event["object"]
                                if kind == "ERROR":
                                    raise _Expired(str(body))
                                version = body["metadata"]["resourceVersion"]
                                if kind == "BOOKMARK":
                                    continue
                                key = (
                                    body["metadata"].get("namespace", ""),
                                    body["metadata"]["name"],
                                )
                                if kind == "DELETED":
                                    bodies.pop(key, None)
                                else:
                                    bodies[key] = body
                                publish_if_changed()
            except asyncio.CancelledError:
                raise
            except (TimeoutError, _Expired, ApiException, OSError) as e:
                log.warning(
                    "Tenant watch interrupted; keeping %d tenants and listing again: %s",
                    len(published or {}),
                    type(e).__name__,
                )
            except Exception:  # the source must outlive any one failure
                log.exception("Tenant watch failed; keeping the last set and retrying")
            if published is None:
                # Not even one list succeeded: tell the directory there is nothing yet.
                published = {}
                publish({})
            await asyncio.sleep(self.retry_delay)


class _Expired(Exception):
    """The watch's resourceVersion is too old (or the server ended it with an error)."""
