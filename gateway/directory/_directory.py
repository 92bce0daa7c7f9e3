"""The tenants the gateway serves, kept current by a pluggable source.

A :class:`TenantSource` publishes the complete tenant set whenever it changes:
the YAML file source does so from a file; the Kubernetes source (from the
operator) does so from Tenant resources. The directory only holds the latest
set; lookups never do I/O.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Protocol

from gateway._types import Tenant, TenantName

log = logging.getLogger(__name__)

Publish = Callable[[Mapping[TenantName, Tenant]], None]


class TenantSource(Protocol):
    """Where tenants come from. The seam for the Kubernetes source."""

    async def watch(self, publish: Publish) -> None:
        """Call ``publish`` with the full set now and after every change.

        Runs until cancelled. A source that cannot read its backend keeps the
        last published set (it does not publish an empty one) and retries.
        """
        ...


class TenantDirectory:
    """The current tenant set, replaced atomically on each publish."""

    def __init__(self) -> None:
        self._tenants: Mapping[TenantName, Tenant] = {}
        self._loaded = asyncio.Event()

    def publish(self, tenants: Mapping[TenantName, Tenant]) -> None:
        self._tenants = dict(tenants)
        self._loaded.set()

    @property
    def loaded(self) -> bool:
        """True once the source published at least once (``/readyz``)."""
        return self._loaded.is_set()

    async def wait_loaded(self) -> None:
        """Return once the source has published at least once."""
        await self._loaded.wait()

    def get(self, name: str) -> Tenant | None:
        return self._tenants.get(TenantName(name))

    def all(self) -> Mapping[TenantName, Tenant]:
        return self._tenants
