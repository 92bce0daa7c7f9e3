"""Plain values the gateway passes between its layers. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NewType

from stowage import tenant_spec

TenantName = NewType("TenantName", str)
UserId = NewType("UserId", str)
CorrelationId = NewType("CorrelationId", str)

#: Scopes a token needs: reading tools need READ, writing tools need WRITE.
READ_SCOPE = "stowage:read"
WRITE_SCOPE = "stowage:write"


#: The Tenant spec's values, from the one shared model (:mod:`stowage.tenant_spec`).
Rate = tenant_spec.Rate
AuthConfig = tenant_spec.Auth
CollectionSpec = tenant_spec.Collection


@dataclass(frozen=True)
class Tenant:
    """Everything the gateway needs to serve one tenant."""

    name: TenantName
    endpoint: str
    auth: AuthConfig
    per_user: Rate = tenant_spec.RateLimits.per_user
    per_tenant: Rate = tenant_spec.RateLimits.per_tenant
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
