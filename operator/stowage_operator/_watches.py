"""Objects of one kind kept in memory by a watch: listed once, then followed.

A reconcile that read each of its objects from the API server on every
resync pass would cost the API server (and the operator) a dozen calls per
Tenant per pass, almost all answering "unchanged". Instead one watch per
kind, across namespaces and narrowed by label on the server, keeps the
objects here, and a reconcile reads its Tenant's from memory.

When the operator watches named namespaces only (no globs), each of them is
listed and watched on its own, so that Roles in those namespaces are all the
RBAC it needs (``operator.rbac.scope: namespaced`` in the chart).

Until a kind has been listed, and whenever its watch fails (say the RBAC
grants ``list`` but not ``watch``), ``synced`` is False and callers read or
write the API server as they would without the watch: a watch that cannot
run costs the old API calls, never a wrong answer. The watch is tried again
after a growing pause.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from stowage_operator._errors import APIGoneError
from stowage_operator._kube import Kube
from stowage_operator._types import Body

log = logging.getLogger(__name__)

TENANT_LABEL = "stowage.dev/tenant"
#: How long the server keeps one watch request open before it is renewed.
WATCH_SECONDS = 300
#: Pauses after a failed list or watch: the first, and the longest.
RETRY_SECONDS = (1.0, 60.0)

_Key = tuple[str, str]


def without_managed_fields(obj: Body) -> Body:
    """Who wrote which field is of no use here and is most of a small object's size."""
    (obj.get("metadata") or {}).pop("managedFields", None)
    return obj


@dataclass
class _Store:
    """The objects of one kind by uid, indexed by (namespace, tenant) and (namespace, name)."""

    slim: Callable[[Body], Body]
    synced: bool = False
    objects: dict[str, Body] = field(default_factory=dict)
    by_tenant: dict[_Key, set[str]] = field(default_factory=dict)
    by_name: dict[_Key, str] = field(default_factory=dict)

    @staticmethod
    def _keys(obj: Body) -> tuple[_Key, _Key]:
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace", ""))
        tenant = str((meta.get("labels") or {}).get(TENANT_LABEL, ""))
        return (namespace, tenant), (namespace, str(meta.get("name", "")))

    def put(self, obj: Body) -> None:
        uid = str((obj.get("metadata") or {}).get("uid", ""))
        self.remove(uid)
        obj = self.slim(obj)
        by_tenant, by_name = self._keys(obj)
        self.objects[uid] = obj
        self.by_tenant.setdefault(by_tenant, set()).add(uid)
        self.by_name[by_name] = uid

    def remove(self, uid: str) -> None:
        old = self.objects.pop(uid, None)
        if old is None:
            return
        by_tenant, by_name = self._keys(old)
        uids = self.by_tenant.get(by_tenant, set())
        uids.discard(uid)
        if not uids:
            self.by_tenant.pop(by_tenant, None)
        if self.by_name.get(by_name) == uid:
            del self.by_name[by_name]

    def replace(self, objects: Iterable[Body]) -> None:
        self.objects.clear()
        self.by_tenant.clear()
        self.by_name.clear()
        for obj in objects:
            self.put(obj)
        self.synced = True


class Watched:
    """The objects of one kind matching ``selector`` in the namespaces the operator watches.

    ``patterns`` are kopf's namespace globs (``!glob`` excludes; none means
    every namespace). ``slim`` trims each object to what readers need before
    it is kept.
    """

    def __init__(
        self,
        kube: Kube,
        api_version: str,
        kind: str,
        selector: str,
        patterns: tuple[str, ...] = (),
        slim: Callable[[Body], Body] = without_managed_fields,
    ) -> None:
        self._kube = kube
        self.api_version = api_version
        self.kind = kind
        self._selector = selector
        self._patterns = patterns
        # One store per named namespace, or one (key None) for every namespace.
        scopes: tuple[str | None, ...] = named_namespaces(patterns) or (None,)
        self._stores = {scope: _Store(slim) for scope in scopes}
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def synced(self) -> bool:
        """Whether the objects here are the API server's (listed, and the watches are running)."""
        return all(store.synced for store in self._stores.values())

    def start(self) -> None:
        """Start the watches (on the running loop); they run until ``stop``."""
        self._tasks = [asyncio.create_task(self._follow(scope)) for scope in self._stores]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def _store_of(self, namespace: str) -> _Store:
        if None in self._stores:
            return self._stores[None]
        return self._stores.get(namespace) or _Store(without_managed_fields, synced=True)

    def of_tenant(self, namespace: str, tenant: str) -> list[Body]:
        store = self._store_of(namespace)
        return [store.objects[uid] for uid in store.by_tenant.get((namespace, tenant), ())]

    def objects(self) -> list[Body]:
        """Every object kept, across the watched namespaces: a copy, safe to read from
        another thread (the metrics server's) while the watches change the stores."""
        return [obj for store in self._stores.values() for obj in list(store.objects.values())]

    def get(self, namespace: str, name: str) -> Body | None:
        store = self._store_of(namespace)
        uid = store.by_name.get((namespace, name))
        return None if uid is None else store.objects[uid]

    def _watched(self, obj: Body) -> bool:
        """Whether the object is in a namespace the operator watches (globs; ``!glob`` excludes)."""
        namespace = str((obj.get("metadata") or {}).get("namespace", ""))
        included = [p for p in self._patterns if not p.startswith("!")]
        excluded = [p[1:] for p in self._patterns if p.startswith("!")]
        return (not included or any(fnmatch.fnmatch(namespace, p) for p in included)) and not any(
            fnmatch.fnmatch(namespace, p) for p in excluded
        )

    async def _follow(self, namespace: str | None) -> None:
        """List, then watch from the list's version; list again when the watch fails."""
        store = self._stores[namespace]
        pause = RETRY_SECONDS[0]
        while True:
            try:
                items, version = await self._kube.list_everywhere(
                    self.api_version, self.kind, self._selector, namespace
                )
                store.replace(o for o in items if self._watched(o))
                while True:
                    version = await self._watch(store, namespace, version)
                    pause = RETRY_SECONDS[0]
            except APIGoneError:
                continue  # too far behind to resume: list afresh
            except Exception as e:  # the top of this task: anything else pauses it
                store.synced = False
                log.warning(
                    "%ss%s are not watched (%s: %s); reconciles read the API server until "
                    "the watch is back, tried again in %.0f s",
                    self.kind,
                    f" in {namespace}" if namespace else "",
                    type(e).__name__,
                    e,
                    pause,
                )
                await asyncio.sleep(pause)
                pause = min(pause * 2, RETRY_SECONDS[1])

    async def _watch(self, store: _Store, namespace: str | None, version: str) -> str:
        """Apply one watch request's changes; return the version to resume from."""
        stream = self._kube.watch_everywhere(
            self.api_version, self.kind, self._selector, version, WATCH_SECONDS, namespace
        )
        async for event, obj in stream:
            version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
            if event == "DELETED":
                store.remove(str((obj.get("metadata") or {}).get("uid", "")))
            elif event in {"ADDED", "MODIFIED"} and self._watched(obj):
                store.put(obj)
        return version


def named_namespaces(patterns: tuple[str, ...]) -> tuple[str, ...]:
    """The namespaces themselves when every pattern names one (no glob, no exclusion)."""
    if all(p and not p.startswith("!") and not any(c in p for c in "*?[") for p in patterns):
        return patterns
    return ()
