"""Spare databases: copies of a region's template made ahead of demand.

Copying the template (``CREATE DATABASE … TEMPLATE``) is most of what a new
tenant's database costs the region's server. A small pool of copies made in the
background, ``stowage-spare-<revision>-<random>``, lets a new tenant take one
instead: the spare is renamed to the tenant's database (``ALTER DATABASE …
RENAME TO``, with its new owner, in one transaction), and its objects are then
handed to the tenant's role as a fresh copy's are. The rename is the claim:
once a spare has the tenant's name, no other operator finds it under its own,
so two operators (a rolling upgrade) never hand one spare to two tenants.

A spare's name carries its template's revision: only spares of the template
this operator copies are ever handed out, and spares whose template is gone
(the schema moved on) are dropped. The pool is refilled one copy at a time per
region, each in one of the region's admin slots, a few seconds after the last
tenant being provisioned there (a burst keeps the server to itself, then the
pool fills again), and whenever a pass finds fewer spares than its size
(``--spare-databases``; 0 keeps none and drops those of an earlier, larger pool).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Iterator

from stowage_operator import _postgres
from stowage_operator._errors import OperatorError
from stowage_operator._templates import RETRY_SECONDS, TEMPLATE_PREFIX, Templates
from stowage_operator._types import AdminCredentials

log = logging.getLogger(__name__)

#: Every spare database's name starts with this (neither a tenant's nor a template's).
SPARE_PREFIX = "stowage-spare-"
#: How often a full pool is listed again (spares dropped by hand, or by another operator).
RECHECK_SECONDS = 300.0
#: How long after the last tenant's provisioning the pool is refilled.
QUIET_SECONDS = 5.0

_Key = tuple[str, int]


def spare_prefix(template: str) -> str:
    """``stowage-spare-<revision>-``: the names of ``template``'s spares (55 bytes in all)."""
    return f"{SPARE_PREFIX}{template.removeprefix(TEMPLATE_PREFIX)}-"


def template_of(spare: str) -> str:
    """The template a spare was copied from, by its name."""
    return TEMPLATE_PREFIX + spare.removeprefix(SPARE_PREFIX).rpartition("-")[0]


class Spares:
    """Per region server, the spare databases this operator may hand out, and their refill."""

    def __init__(self, templates: Templates, connect_timeout: float, size: int) -> None:
        self._templates = templates
        self._timeout = connect_timeout
        self._size = max(0, size)
        #: Spares of the current template, not yet handed out by this process.
        self._ready: dict[_Key, list[str]] = {}
        #: Spares handed out by this process (renamed soon, or left for the next listing).
        self._taken: set[str] = set()
        self._listed_at: dict[_Key, float] = {}
        #: Until when a refill that failed is not tried again.
        self._failed_until: dict[_Key, float] = {}
        self._tasks: dict[_Key, asyncio.Task[None]] = {}
        self._closing = False
        #: Per region server, the tenants' provisionings under way.
        self._serving: dict[_Key, int] = {}
        #: Refill passes under way, and their end, for :meth:`close` in another thread.
        self._filling = 0
        self._idle = threading.Condition()

    def take(self, admin: AdminCredentials, template: str) -> str | None:
        """A spare of ``template`` that no caller in this process got before, or None."""
        ready = self._ready.get((admin.host, admin.port), [])
        prefix = spare_prefix(template)
        while ready:
            name = ready.pop()
            if name.startswith(prefix):
                self._taken.add(name)
                return name
        return None

    @contextlib.contextmanager
    def serving(self, admin: AdminCredentials) -> Iterator[None]:
        """Around a tenant's provisioning: meanwhile the refill makes no copy (a burst of new
        tenants has the region's server and admin slots to itself); a few seconds after the
        last, it refills."""
        key = (admin.host, admin.port)
        self._serving[key] = self._serving.get(key, 0) + 1
        try:
            yield
        finally:
            self._serving[key] -= 1
            if not self._serving[key]:
                # Not at once: the burst's last tenants still have their workers to make.
                asyncio.get_running_loop().call_later(QUIET_SECONDS, self.refill, admin)

    def release(self, name: str) -> None:
        """``name`` (taken) was not claimed: the next listing may offer it again if it is there."""
        self._taken.discard(name)

    def refill(self, admin: AdminCredentials) -> None:
        """Top the region's pool up in the background, unless it is full and listed lately
        or a refill is under way. Cheap enough to call on every pass of every Tenant."""
        key = (admin.host, admin.port)
        now = time.monotonic()
        if self._closing or key in self._tasks or now < self._failed_until.get(key, 0.0):
            return
        if self._serving.get(key):
            return  # the last tenant being provisioned starts it
        full = len(self._ready.get(key, ())) >= self._size
        if full and key in self._listed_at and now < self._listed_at[key] + RECHECK_SECONDS:
            return
        task = asyncio.get_running_loop().create_task(self.fill(admin))
        self._tasks[key] = task
        task.add_done_callback(lambda _: self._tasks.pop(key, None))

    def close(self) -> None:
        """Start no more statements; from another thread than the refills', wait (a while) for
        the one under way. Cancelling it would cost a connection beyond the region's cap (the
        client's cancel request), and a copy cancelled half-way leaves nothing to keep anyway."""
        self._closing = True
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop()
            return  # on the refills' own loop: they stop at their next statement
        with self._idle:
            self._idle.wait_for(lambda: self._filling == 0, timeout=self._timeout)

    async def fill(self, admin: AdminCredentials) -> None:
        """One refill pass, awaited: drop the spares that must go, make the missing ones."""
        key = (admin.host, admin.port)
        with self._idle:
            self._filling += 1
        try:
            # Without a pool no template is needed: only an earlier pool's spares to drop.
            template = await self._templates.template(admin) if self._size else None
            if template is None and self._size:
                return
            await self._sort(admin, key, template)
            if template is None:
                return
            prefix = spare_prefix(template)
            ready = self._ready[key]
            while len(ready) < self._size and not self._closing and not self._serving.get(key):
                name = prefix + secrets.token_hex(4)
                await _postgres.create_spare(admin, name, template, self._timeout)
                ready.append(name)
        except OperatorError as e:
            # Perhaps the template went (another operator's newer schema): look for it again.
            self._templates.forget(admin)
            self._failed_until[key] = time.monotonic() + RETRY_SECONDS
            log.warning("spare databases not refilled (%s); copying the template", e.message)
        finally:
            self._listed_at[key] = time.monotonic()
            with self._idle:
                self._filling -= 1
                self._idle.notify_all()

    async def _sort(self, admin: AdminCredentials, key: _Key, template: str | None) -> None:
        """List the region's spares: keep the current template's (up to the pool's size),
        drop those whose template is gone and those beyond the size."""
        spares = await _postgres.databases_named(admin, self._timeout, SPARE_PREFIX)
        if not spares:
            self._ready[key] = []
            return
        if template is None:  # no pool (any more)
            current, gone = [], spares
        else:
            templates = set(await _postgres.databases_named(admin, self._timeout, TEMPLATE_PREFIX))
            current = [name for name in spares if name.startswith(spare_prefix(template))]
            # Another operator's, of a schema whose template is still there, it may hand out.
            gone = [name for name in spares if template_of(name) not in templates]
        for name in gone + current[self._size :]:
            if self._closing:
                return
            await _postgres.drop_spare(admin, name, self._timeout)
        self._taken &= set(spares)
        self._ready[key] = [name for name in current[: self._size] if name not in self._taken]


__all__ = ["SPARE_PREFIX", "Spares", "spare_prefix", "template_of"]
