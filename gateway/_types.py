"""Plain values the gateway passes between its layers. No I/O here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NewType

TenantName = NewType("TenantName", str)
UserId = NewType("UserId", str)
CorrelationId = NewType("CorrelationId", str)

#: Scopes a token needs: reading tools need READ, writing tools need WRITE.
READ_SCOPE = "stowage:read"
WRITE_SCOPE = "stowage:write"


@dataclass(frozen=True)
class Rate:
    """A token bucket: ``burst`` tokens, refilled at ``per_minute`` per minute."""

    per_minute: int
    burst: int

    @property
    def per_second(self) -> float:
        return self.per_minute / 60.0


@dataclass(frozen=True)
class AuthConfig:
    issuer: str
    audience: str
    jwks_uri: str | None = None


@dataclass(frozen=True)
class CollectionSpec:
    """A collection the tenant declares; ``schema`` drives its typed tools."""

    name: str
    schema_version: int = 1
    schema: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Tenant:
    """Everything the gateway needs to serve one tenant."""

    name: TenantName
    endpoint: str
    auth: AuthConfig
    per_user: Rate = Rate(per_minute=120, burst=30)
    per_tenant: Rate = Rate(per_minute=6000, burst=600)
    collections: tuple[CollectionSpec, ...] = ()
    #: Collections named only in retention: schemaless, reachable by the item tools.
    extra_collections: tuple[str, ...] = ()


@dataclass(frozen=True)
class Principal:
    """The verified caller: who the issuer says they are, and what they may do."""

    issuer: str
    subject: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    client_id: str | None = None
