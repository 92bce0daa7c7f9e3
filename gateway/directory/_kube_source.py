"""Tenants from Kubernetes: a read-only watch of Tenant resources (``stowage.dev/v1alpha1``).

A :class:`~gateway.directory._directory.TenantSource`. A Tenant is routable once the
operator has published its worker's ``status.endpoint``, and stops being
routable as soon as it is marked for deletion. Auth, rate limits and
collections come from its spec, parsed exactly like the tenant file.

The source lists (parsing each Tenant as it arrives, in slices between the
requests it serves), publishes, then watches from the list's resourceVersion.
Each event re-parses only its own Tenant; the routable set is published after
a change, at most once per ``publish_interval`` so that a burst of events (a
resync of thousands of Tenants) is one publish. When the API cannot be read
(unreachable, 401/403, a broken stream, or the watch expired: 410), it keeps
the last published set, waits and lists again, re-parsing only the Tenants
whose resourceVersion moved. It only ever reads: the gateway's RBAC needs
``get``, ``list`` and ``watch`` on ``tenants.stowage.dev``, and on ConfigMaps for
components whose HTML is held in one.

Those ConfigMaps (labelled ``stowage.dev/component=true``, in the same
namespaces) are listed and watched beside the Tenants (``_kube_bundles``): a
changed ConfigMap resolves again only the Tenants that name it, and the new
set is published like any other change. Nothing is read per tool call.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import anyio

from gateway._errors import KubeUnavailable, TenantConfigError
from gateway._types import Tenant, TenantName
from gateway.directory._kube_bundles import Bundles, bundles_path, references, resolved
from gateway.directory._kube_client import KubeClient, ListAnswer, list_ahead
from gateway.directory._kube_config import KubeAccess, from_kubeconfig, in_cluster
from gateway.directory._tenant_file import Slices, parse_tenant
from stowage import apps
from stowage.crd import TENANT_PLURAL, collection_path

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name)
Publish = Callable[[Mapping[TenantName, Tenant]], None]


def routable(body: Mapping[str, Any]) -> Tenant | None:
    """The gateway's view of one Tenant resource, or None when it must not be routed to."""
    meta = body.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return None
    status = body.get("status") or {}
    endpoint = status.get("endpoint")
    if not endpoint:
        return None
    name = str(meta.get("name", ""))
    try:
        # The worker instance the operator published: calls name it, so only that
        # worker answers (None from an operator that publishes none: any worker).
        return parse_tenant(name, body.get("spec") or {}, endpoint, status.get("instance"))
    except TenantConfigError as e:
        log.error(
            "Tenant %s/%s not routable: %s", meta.get("namespace"), name, e, extra={"tenant": name}
        )
        return None


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a list is taken in.

    Decoding a page of Tenants makes tens of thousands of containers at once;
    with the collector on, the young collections during the decode promote
    them, and every few pages the old generation is then walked in full: 130 to
    600 ms each (seven of them for ten thousand Tenants) during which no request
    is answered. They form no cycles and die by reference counting anyway.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _key(body: Mapping[str, Any]) -> Key:
    meta = body["metadata"]
    return meta.get("namespace", ""), meta["name"]


class RoutableTenants:
    """The routable Tenants by name, kept up to date one resource at a time.

    A name used in more than one namespace is served from the first namespace
    (in sort order) and the others are logged and ignored. A Tenant whose
    components name ConfigMaps (``htmlFrom``) is served with their HTML from
    ``bundles``, and resolved again when one of them changes (:meth:`refresh`).
    """

    def __init__(self, bundles: Bundles | None = None) -> None:
        self._bundles = bundles or Bundles()
        #: Each known resource: its resourceVersion and its Tenant (None: not routable).
        self._resources: dict[Key, tuple[str, Tenant | None]] = {}
        #: The namespaces in which each name is routable.
        self._namespaces: dict[str, set[str]] = {}
        self._by_name: dict[TenantName, Tenant] = {}
        #: Tenants naming ConfigMaps, as parsed (before their HTML is read).
        self._unresolved: dict[Key, Tenant] = {}
        #: The Tenants that name each ConfigMap (namespace, name).
        self._naming: dict[Key, set[Key]] = {}

    def __len__(self) -> int:
        return len(self._by_name)

    def snapshot(self) -> dict[TenantName, Tenant]:
        return dict(self._by_name)

    def keys(self) -> set[Key]:
        return set(self._resources)

    def put(self, body: Mapping[str, Any]) -> bool:
        """Take a Tenant resource as it now is; True when the routable set changed."""
        key = _key(body)
        version = str(body["metadata"].get("resourceVersion", ""))
        known = self._resources.get(key)
        if known is not None and version and known[0] == version:
            return False
        tenant = self._resolve(key, routable(body))
        return self._keep(key, version, tenant)

    def remove(self, key: Key) -> bool:
        """Forget a deleted Tenant resource; True when the routable set changed."""
        self._resolve(key, None)
        if self._resources.pop(key, None) is None:
            return False
        return self._route(key, None)

    def refresh(self, config_maps: set[Key] | None = None) -> bool:
        """Resolve again the Tenants naming ``config_maps`` (None: every ConfigMap), which
        changed; True when the routable set changed."""
        if config_maps is None:
            keys = set(self._unresolved)
        else:
            keys = {k for cm in config_maps for k in self._naming.get(cm, ())}
        changed = False
        for key in keys:
            version = self._resources[key][0]
            changed |= self._keep(key, version, self._resolve(key, self._unresolved[key]))
        return changed

    def _keep(self, key: Key, version: str, tenant: Tenant | None) -> bool:
        known = self._resources.get(key)
        if known is not None and tenant == known[1]:
            tenant = known[1]  # the same object: its tool catalogue stays built
        self._resources[key] = (version, tenant)
        return self._route(key, tenant)

    def _resolve(self, key: Key, tenant: Tenant | None) -> Tenant | None:
        """``tenant`` with its components' HTML read from the ConfigMaps they name."""
        namespace = key[0]
        for name in references(self._unresolved.pop(key)) if key in self._unresolved else ():
            naming = self._naming[(namespace, name)]
            naming.discard(key)
            if not naming:
                del self._naming[(namespace, name)]
        if tenant is None or not (names := references(tenant)):
            return tenant
        self._unresolved[key] = tenant
        for name in names:
            self._naming.setdefault((namespace, name), set()).add(key)
        return resolved(tenant, namespace, self._bundles)

    def _route(self, key: Key, tenant: Tenant | None) -> bool:
        namespace, name = key
        namespaces = self._namespaces.setdefault(name, set())
        if tenant is None:
            namespaces.discard(namespace)
        else:
            namespaces.add(namespace)
        if not namespaces:
            del self._namespaces[name]
            return self._by_name.pop(TenantName(name), None) is not None
        first = min(namespaces)
        if len(namespaces) > 1:
            log.error(
                "Tenant name %s is used in more than one namespace; serving %s/%s, ignoring %s",
                name,
                first,
                name,
                ", ".join(f"{n}/{name}" for n in sorted(namespaces - {first})),
                extra={"tenant": name},
            )
        served = self._resources[(first, name)][1]
        assert served is not None
        if self._by_name.get(TenantName(name)) is served:
            return False
        self._by_name[TenantName(name)] = served
        return True


class _Publisher:
    """Publishes the routable set after it changed, at most once per ``interval``."""

    def __init__(self, tenants: RoutableTenants, publish: Publish, interval: float) -> None:
        self._tenants = tenants
        self._publish = publish
        self._interval = interval
        self._due = anyio.Event()
        self.published = False

    def changed(self) -> None:
        self._due.set()

    def nothing_yet(self) -> None:
        """Before the first list succeeded: tell the directory there is nothing yet."""
        if not self.published:
            self.published = True
            self._publish({})

    async def run(self) -> None:
        while True:
            await self._due.wait()
            self._due = anyio.Event()
            tenants = self._tenants.snapshot()
            log.info(
                "tenants from Kubernetes: %d routable",
                len(tenants),
                extra={"tenant_count": len(tenants)},
            )
            self.published = True
            self._publish(tenants)
            await anyio.sleep(self._interval)


class KubeTenantSource:
    """Watch Tenant resources in one namespace (or all) and publish the routable ones."""

    def __init__(
        self,
        kubeconfig: Path | None = None,
        namespace: str | None = None,
        retry_delay: float = 2.0,
        watch_timeout: int = 300,
        page_size: int = 0,
        publish_interval: float = 0.25,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.retry_delay = retry_delay
        self.watch_timeout = watch_timeout
        self.page_size = page_size
        self.publish_interval = publish_interval
        self._ahead: ListAnswer | None = None

    def list_ahead(self) -> None:
        """Ask for the first list now, before the event loop runs; ``watch`` reads it.

        A thread reads the answer meanwhile: the API server takes about as
        long to produce ten thousand Tenants as the gateway takes to load.
        """
        try:
            self._ahead = list_ahead(self._access(), self.path, self.page_size)
        except KubeUnavailable:
            self._ahead = None  # ``watch`` tries again and says why

    @property
    def path(self) -> str:
        """The Tenant collection the source reads: one namespace's, or all of them."""
        return collection_path(TENANT_PLURAL, self.namespace)

    async def watch(self, publish: Publish) -> None:
        bundles = Bundles()
        tenants = RoutableTenants(bundles)
        publisher = _Publisher(tenants, publish, self.publish_interval)
        async with anyio.create_task_group() as tg:
            tg.start_soon(publisher.run)
            # The components' ConfigMaps first (listed, or found unreadable), so the
            # first publish serves their HTML; the Tenant list is read ahead meanwhile.
            tried = anyio.Event()
            tg.start_soon(self._watch_bundles, bundles, tenants, publisher, tried)
            await tried.wait()
            while True:
                try:
                    async with KubeClient(self._access()) as api:
                        version = await self._list(api, tenants, publisher)
                        await self._follow(api, version, tenants, publisher)
                except (TimeoutError, KubeUnavailable, OSError) as e:
                    log.warning(
                        "Tenant watch interrupted; keeping %d tenants and listing again: %s",
                        len(tenants),
                        e if str(e) else type(e).__name__,
                    )
                except Exception:  # the source must outlive any one failure
                    log.exception("Tenant watch failed; keeping the last set and retrying")
                publisher.nothing_yet()
                await anyio.sleep(self.retry_delay)

    async def _watch_bundles(
        self,
        bundles: Bundles,
        tenants: RoutableTenants,
        publisher: _Publisher,
        tried: anyio.Event,
    ) -> None:
        """Keep ``bundles`` current: the labelled ConfigMaps, one list then one watch at a
        time, as for the Tenants. Failing to read them (no RBAC yet) only leaves the
        components that name them unserved; the Tenants are served regardless."""
        path = bundles_path(self.namespace)
        while True:
            try:
                async with KubeClient(self._access()) as api:
                    answer = api.list(path, selector=apps.BUNDLE_SELECTOR)
                    listed: dict[Key, Mapping[str, Any]] = {}
                    async with contextlib.aclosing(answer.items()) as items:
                        async for body in items:
                            listed[_key(body)] = body
                    changed = {key for key, body in listed.items() if bundles.put(body)}
                    changed |= {key for key in bundles.keys() - set(listed) if bundles.remove(key)}
                    first = bundles.unreadable is not None
                    bundles.unreadable = None
                    log.info("listed %d component ConfigMaps", len(listed))
                    if tenants.refresh(None if first else changed):
                        publisher.changed()
                    tried.set()
                    version = str(answer.metadata["resourceVersion"])
                    while True:
                        events = api.watch(path, version, self.watch_timeout, apps.BUNDLE_SELECTOR)
                        async with contextlib.aclosing(events):
                            async for event in events:
                                version = self._apply_bundle(event, bundles, tenants, publisher)
            except (TimeoutError, KubeUnavailable, OSError) as e:
                reason = e if str(e) else type(e).__name__
                if bundles.unreadable is not None:
                    bundles.unreadable = str(reason)
                log.warning(
                    "component ConfigMap watch interrupted; keeping %d and listing again: %s",
                    len(bundles.keys()),
                    reason,
                )
            except Exception:  # the source must outlive any one failure
                log.exception("component ConfigMap watch failed; keeping the last set and retrying")
            tried.set()
            await anyio.sleep(self.retry_delay)

    @staticmethod
    def _apply_bundle(
        event: Mapping[str, Any], bundles: Bundles, tenants: RoutableTenants, publisher: _Publisher
    ) -> str:
        """Take one ConfigMap watch event; the resourceVersion it brings."""
        kind, body = event["type"], event["object"]
        if kind == "DELETED":
            changed = bundles.remove(_key(body))
        elif kind != "BOOKMARK":
            changed = bundles.put(body)
        else:
            changed = False
        if changed and tenants.refresh({_key(body)}):
            publisher.changed()
        return str(body["metadata"]["resourceVersion"])

    def _access(self) -> KubeAccess:
        """Read each time the source (re)connects: a kubeconfig may have been fixed meanwhile."""
        return in_cluster() if self.kubeconfig is None else from_kubeconfig(self.kubeconfig)

    async def _list(self, api: KubeClient, tenants: RoutableTenants, publisher: _Publisher) -> str:
        """Bring ``tenants`` up to a fresh list; the list's resourceVersion.

        Each Tenant is parsed as it arrives, in slices between the requests
        the gateway serves; in pages of ``page_size`` when that is set.
        """
        listed: set[Key] = set()
        changed = False
        slices = Slices()
        token: str | None = None
        with _collector_paused():
            while True:
                answer = self._ahead or api.list(self.path, self.page_size, token)
                self._ahead = None
                async with contextlib.aclosing(answer.items()) as items:
                    async for body in items:
                        listed.add(_key(body))
                        changed |= tenants.put(body)
                        await slices.tick()
                token = answer.metadata.get("continue")
                if not token:
                    break
        for key in tenants.keys() - listed:
            changed |= tenants.remove(key)
        log.info("listed %d Tenant resources", len(listed), extra={"tenant_count": len(listed)})
        if changed or not publisher.published:
            publisher.changed()
        return str(answer.metadata["resourceVersion"])

    async def _follow(
        self, api: KubeClient, version: str, tenants: RoutableTenants, publisher: _Publisher
    ) -> None:
        """Apply watch events from ``version`` on, one watch after another, until one fails."""
        while True:
            events = api.watch(self.path, version, self.watch_timeout)
            async with contextlib.aclosing(events):
                async for event in events:
                    version = self._apply(event, tenants, publisher) or version

    @staticmethod
    def _apply(event: Mapping[str, Any], tenants: RoutableTenants, publisher: _Publisher) -> str:
        """Take one watch event into ``tenants``; the resourceVersion it brings."""
        kind, body = event["type"], event["object"]
        if kind == "DELETED":
            changed = tenants.remove(_key(body))
        elif kind != "BOOKMARK":
            changed = tenants.put(body)
        else:
            changed = False
        if changed:
            publisher.changed()
        return str(body["metadata"]["resourceVersion"])
