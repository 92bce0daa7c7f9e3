"""The links a tool result carries: signed URLs on the tenant's own MCP host, to a file
(``/t/<tenant>/files/<id>``) or to the user's export archive (``/t/<tenant>/files/export``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from gateway._types import Tenant, UserId
from gateway.files._keys import SigningKeys
from gateway.files._signing import EXPORT_PATH, Grant, Kind, Method, query

#: How long a link lasts, by default (the gateway's ``--file-link-seconds``).
LINK_SECONDS = 15 * 60


def files_base(tenant: Tenant) -> str:
    """``https://<host>/t/<tenant>/files``: the host of the tenant's MCP URL (its audience)."""
    return f"{tenant.origin}/t/{tenant.name}/files"


@dataclass(frozen=True)
class TenantLinks:
    """Links to one tenant's files (``gateway.surface._operations.FileLinks``)."""

    tenant: Tenant
    keys: SigningKeys
    seconds: int
    clock: Callable[[], float]

    def _link(self, grant: Grant) -> dict[str, Any]:
        key = self.keys.signing(self.tenant.name)
        url = f"{files_base(self.tenant)}/{grant.file_id}?{urlencode(query(key, grant))}"
        return {
            "url": url,
            "method": "PUT" if grant.method is Method.PUT else "GET",
            "expires_at": datetime.fromtimestamp(grant.expires, UTC).isoformat(),
        }

    def _expires(self) -> int:
        return int(self.clock()) + self.seconds

    def upload(self, user: UserId, file_id: str, size: int, sha256: str) -> dict[str, Any]:
        grant = Grant(self.tenant.name, user, file_id, Method.PUT, self._expires(), size, sha256)
        return self._link(grant)

    def download(self, user: UserId, file_id: str) -> dict[str, Any]:
        return self._link(Grant(self.tenant.name, user, file_id, Method.GET, self._expires()))

    def export(self, user: UserId) -> dict[str, Any]:
        """A GET link to ``user``'s export archive (``gateway.files._archive``)."""
        grant = Grant(
            self.tenant.name, user, EXPORT_PATH, Method.GET, self._expires(), kind=Kind.EXPORT
        )
        return self._link(grant)


class Links:
    """Links for every tenant, signed with each one's key."""

    def __init__(
        self,
        keys: SigningKeys,
        seconds: int = LINK_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys, self.seconds, self.clock = keys, seconds, clock

    def of(self, tenant: Tenant) -> TenantLinks:
        return TenantLinks(tenant, self.keys, self.seconds, self.clock)
