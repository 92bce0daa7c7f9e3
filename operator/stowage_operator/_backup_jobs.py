"""The tenants' backup and drill Jobs and their pods, kept in memory by two watches.

A reconcile reads what its Tenant's backup runs ended with (``_backup_status``).
Listing both kinds for that cost two API calls per Tenant per resync pass,
two thousand a minute at a thousand Tenants, almost all answering "nothing
new". Instead one watch per kind, across namespaces and narrowed by label on
the server, keeps every backup Job and pod here, and a reconcile reads its
Tenant's from memory.

Until a kind has been listed, and whenever its watch fails (say the RBAC
grants ``list`` but not ``watch``), ``of`` answers None and the caller lists
as before: a watch that cannot run costs the old API calls, never a wrong
status. The watch is tried again after a growing pause.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from stowage_operator._backups import TASK_LABEL
from stowage_operator._errors import APIGoneError
from stowage_operator._kube import Kube
from stowage_operator._types import Body, TenantRef

log = logging.getLogger(__name__)

#: Every Job and pod of the two CronJobs, of every Tenant.
SELECTOR = f"{TASK_LABEL} in (backup,drill)"
TENANT_LABEL = "stowage.dev/tenant"
#: How long the server keeps one watch request open before it is renewed.
WATCH_SECONDS = 300
#: Pauses after a failed list or watch: the first, and the longest.
RETRY_SECONDS = (1.0, 60.0)

_Key = tuple[str, str]


@dataclass
class _Store:
    """The objects of one kind by uid, indexed by (namespace, tenant)."""

    synced: bool = False
    objects: dict[str, Body] = field(default_factory=dict)
    by_tenant: dict[_Key, set[str]] = field(default_factory=dict)

    @staticmethod
    def _key(obj: Body) -> _Key:
        meta = obj.get("metadata") or {}
        return str(meta.get("namespace", "")), str((meta.get("labels") or {}).get(TENANT_LABEL, ""))

    def put(self, obj: Body) -> None:
        meta = obj.get("metadata") or {}
        uid = str(meta.get("uid", ""))
        self.remove(uid)
        # Who wrote which field is of no use here and is most of a small object's size.
        meta.pop("managedFields", None)
        self.objects[uid] = obj
        self.by_tenant.setdefault(self._key(obj), set()).add(uid)

    def remove(self, uid: str) -> None:
        old = self.objects.pop(uid, None)
        if old is not None:
            key = self._key(old)
            uids = self.by_tenant.get(key, set())
            uids.discard(uid)
            if not uids:
                self.by_tenant.pop(key, None)

    def replace(self, objects: Iterable[Body]) -> None:
        self.objects.clear()
        self.by_tenant.clear()
        for obj in objects:
            self.put(obj)
        self.synced = True

    def of(self, key: _Key) -> list[Body]:
        return [self.objects[uid] for uid in self.by_tenant.get(key, ())]


class BackupJobs:
    """Backup Jobs and pods in the namespaces the operator watches (``patterns``, as kopf's)."""

    def __init__(self, kube: Kube, patterns: tuple[str, ...] = ()) -> None:
        self._kube = kube
        self._patterns = patterns
        self._jobs = _Store()
        self._pods = _Store()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start both watches (on the running loop); they run until ``stop``."""
        self._tasks = [
            asyncio.create_task(self._follow("batch/v1", "Job", self._jobs)),
            asyncio.create_task(self._follow("v1", "Pod", self._pods)),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def of(self, ref: TenantRef) -> tuple[list[Body], list[Body]] | None:
        """The Tenant's backup Jobs and their pods, or None while the watches are not current."""
        if not (self._jobs.synced and self._pods.synced):
            return None
        key = (str(ref.namespace), str(ref.name))
        return self._jobs.of(key), self._pods.of(key)

    def _watched(self, obj: Body) -> bool:
        """Whether the object is in a namespace the operator watches (globs; ``!glob`` excludes)."""
        namespace = str((obj.get("metadata") or {}).get("namespace", ""))
        included = [p for p in self._patterns if not p.startswith("!")]
        excluded = [p[1:] for p in self._patterns if p.startswith("!")]
        return (not included or any(fnmatch.fnmatch(namespace, p) for p in included)) and not any(
            fnmatch.fnmatch(namespace, p) for p in excluded
        )

    async def _follow(self, api_version: str, kind: str, store: _Store) -> None:
        """List, then watch from the list's version; list again when the watch fails."""
        pause = RETRY_SECONDS[0]
        while True:
            try:
                items, version = await self._kube.list_everywhere(api_version, kind, SELECTOR)
                store.replace(o for o in items if self._watched(o))
                while True:
                    version = await self._watch(api_version, kind, store, version)
                    pause = RETRY_SECONDS[0]
            except APIGoneError:
                continue  # too far behind to resume: list afresh
            except Exception as e:  # the top of this task: anything else pauses it
                store.synced = False
                log.warning(
                    "backup %ss are not watched (%s: %s); reconciles list them until "
                    "the watch is back, tried again in %.0f s",
                    kind,
                    type(e).__name__,
                    e,
                    pause,
                )
                await asyncio.sleep(pause)
                pause = min(pause * 2, RETRY_SECONDS[1])

    async def _watch(self, api_version: str, kind: str, store: _Store, version: str) -> str:
        """Apply one watch request's changes; return the version to resume from."""
        stream = self._kube.watch_everywhere(api_version, kind, SELECTOR, version, WATCH_SECONDS)
        async for event, obj in stream:
            version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
            if event == "DELETED":
                store.remove(str((obj.get("metadata") or {}).get("uid", "")))
            elif event in {"ADDED", "MODIFIED"} and self._watched(obj):
                store.put(obj)
        return version
