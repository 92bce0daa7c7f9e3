"""Plain values the gateway passes between its layers. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import NewType

from stowage import tenant_spec
from stowage.wire import identity_digest

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
AccessSpec = tenant_spec.Access


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
    #: The launch stage: everyone, or internal testers only.
    access: AccessSpec = field(default_factory=AccessSpec)


@dataclass(frozen=True)
class Principal:
    """The verified caller: who the issuer says they are, and what they may do."""

    issuer: str
    subject: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    client_id: str | None = None
    #: When the token was issued (``iat``, else ``nbf``), seconds since the epoch;
    #: None when it says neither. Revocations compare it.
    issued_at: float | None = None
    #: The token's ``email`` claim, unless ``email_verified`` is false.
    email: str | None = None

    @cached_property
    def identity(self) -> str:
        """The (issuer, subject) digest that revocations and rate limits are keyed by."""
        return identity_digest(self.issuer, self.subject)


@dataclass(frozen=True)
class Revocation:
    """Tokens of ``identity`` (None: of everyone) issued at or before ``revoked_before`` end.

    ``revoked_before`` is in seconds since the epoch; ``id`` orders revocations
    as the tenant's worker recorded them.
    """

    id: int
    identity: str | None
    revoked_before: float
