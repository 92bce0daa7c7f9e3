"""A revocation request: the one value both sides of ``RevokeAccess`` speak. No I/O here.

The gateway's client (``gateway.forwarding._worker.WorkerClient.revoke_access``, called by
a user's tool and by ``stowage access revoke``) sends its fields; the worker's
gRPC surface reads them back into it and its access service checks and records
it. Protobuf-free, so the worker's services below the gRPC surface can take it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

#: A user ends their own access (a tool call).
USER = "user"
#: An operator ends an identity's or every identity's access (``stowage access revoke``).
OPERATOR = "operator"
#: Who may ask; the audit row records which one did.
REQUESTERS = frozenset({USER, OPERATOR})


@dataclass(frozen=True, kw_only=True)
class RevocationRequest:
    """Refuse tokens issued at or before ``revoked_before`` (None: now).

    Whose: the identity ``issuer`` + ``subject``; with neither, the user the
    call acts for; with ``all_identities``, every identity of the tenant (a
    signing key compromise). ``reason`` is for the audit trail only.
    """

    issuer: str = ""
    subject: str = ""
    all_identities: bool = False
    revoked_before: datetime | None = None
    requested_by: str = OPERATOR
    reason: str = ""


class RevocationFields(TypedDict, total=False):
    """:class:`RevocationRequest`'s fields as keyword arguments (``**fields``)."""

    issuer: str
    subject: str
    all_identities: bool
    revoked_before: datetime | None
    requested_by: str
    reason: str


__all__ = ["OPERATOR", "REQUESTERS", "USER", "RevocationFields", "RevocationRequest"]
