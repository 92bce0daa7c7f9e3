"""Plain values the gateway passes between its layers. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import NewType
from urllib.parse import urlsplit

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
    """Everything the gateway needs to serve one tenant: where, and its parsed spec.

    The spec is the shared parser's result as it stands (:mod:`stowage.tenant_spec`),
    never a copy of some of its fields: a field added there reaches the gateway
    without a line here. The properties name the parts the gateway reads most.
    """

    name: TenantName
    endpoint: str
    spec: tenant_spec.TenantSpec
    #: The worker instance the endpoint must reach (``stowage.wire.INSTANCE_KEY``);
    #: None: any worker of this tenant.
    instance: str | None = None

    def __post_init__(self) -> None:
        if self.spec.auth is None:
            raise ValueError(f"tenant {self.name!r}: a served tenant needs spec.auth")

    @property
    def auth(self) -> AuthConfig:
        assert self.spec.auth is not None  # checked when made
        return self.spec.auth

    @property
    def per_user(self) -> Rate:
        return self.spec.rate_limits.per_user

    @property
    def per_tenant(self) -> Rate:
        return self.spec.rate_limits.per_tenant

    @property
    def collections(self) -> tuple[CollectionSpec, ...]:
        return self.spec.collections

    @cached_property
    def origin(self) -> str:
        """``https://<host>``: the origin of the tenant's MCP URL (its audience), which
        also serves its file links."""
        parts = urlsplit(self.auth.audience)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def access(self) -> AccessSpec:
        """The launch stage: everyone, or internal testers only."""
        return self.spec.access


@dataclass(frozen=True)
class Principal:
    """The verified caller: who the issuer says they are, and what they may do."""

    issuer: str
    subject: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    client_id: str | None = None
    #: When the token was issued (``iat``, else ``nbf``), seconds since the epoch;
    #: None when it says neither.
    issued_at: float | None = None
    #: The token's ``email`` claim, unless ``email_verified`` is false.
    email: str | None = None
    #: The token says ``email_verified: true`` (invitations by email need it: an
    #: email the authorization server did not verify never accepts one).
    email_verified: bool = False
    #: The display name and organisation claims the tenant names (``spec.identity``).
    name: str | None = None
    org: str | None = None
    #: When the user signed in to get the grant behind the token (``auth_time``,
    #: OIDC Core section 2), seconds since the epoch: a refresh keeps it, a new
    #: sign-in moves it. None when the token does not say.
    authenticated_at: float | None = None
    #: The authorization server's session id (``sid``), kept across refreshes; for logs.
    session: str | None = None

    @property
    def signed_in_at(self) -> float | None:
        """What revocations compare: ``auth_time``, else (undone by a refresh) ``iat``/``nbf``."""
        return self.authenticated_at if self.authenticated_at is not None else self.issued_at

    @cached_property
    def identity(self) -> str:
        """The (issuer, subject) digest that revocations and rate limits are keyed by."""
        return identity_digest(self.issuer, self.subject)


@dataclass(frozen=True)
class Revocation:
    """Grants of ``identity`` (None: of everyone) signed in at or before ``revoked_before`` end.

    A token's sign-in time is ``Principal.signed_in_at``: its ``auth_time``,
    which a refresh keeps, so a refreshed token of an ended grant stays refused.

    ``revoked_before`` is in seconds since the epoch; ``id`` orders revocations
    as the tenant's worker recorded them.
    """

    id: int
    identity: str | None
    revoked_before: float
