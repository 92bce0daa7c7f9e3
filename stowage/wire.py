"""The gateway↔worker contract beyond the protobuf messages: gRPC metadata. No I/O here.

Both sides import these names, so a key or a pattern is written once. Every
call names the tenant it is for (``TENANT_KEY``) and the worker refuses a call
for any other tenant, so a misrouted call (a stale endpoint, a reused port)
fails loudly instead of reading another tenant's data.

A worker may also have an instance id: one run of a tenant's worker on one
database (a ``stowage dev`` run), or in a cluster one Tenant object's worker on
its database (the operator's ``status.instance``). A call names the instance it is for
(``INSTANCE_KEY``) when the caller knows it, and a worker that has an instance
id refuses a call that names another one, so a gateway never serves from a
worker that is not its own, even one of the same tenant (a worker a killed
platform left behind on the port). A call that names no instance is not
checked for one.
"""

from __future__ import annotations

import hashlib
import random
import re
import secrets
from collections.abc import Iterable

#: The tenant the call is meant for; the worker compares it with its own.
TENANT_KEY = "x-stowage-tenant"
#: The worker instance the call is meant for, when the caller knows it; a worker
#: with an instance id refuses a call that names another (PERMISSION_DENIED).
INSTANCE_KEY = "x-stowage-instance"
#: The verified internal user id the call acts for (user calls only).
USER_ID_KEY = "x-stowage-user-id"
#: Carried from the HTTP request to the worker's log line and audit row.
CORRELATION_KEY = "x-correlation-id"
#: W3C trace context (``stowage.tracing``), sent only while the caller traces: the
#: caller's span as ``00-<trace id>-<span id>-<flags>``, and any vendors' state.
#: A worker that traces continues that trace (a call without them starts one).
#: When the gateway traces, ``CORRELATION_KEY`` holds the trace id, unless the
#: client sent its own ``X-Request-Id``.
TRACEPARENT_KEY = "traceparent"
TRACESTATE_KEY = "tracestate"
#: Trailing metadata of an ABORTED write: the current object or preferences.
CURRENT_OBJECT_KEY = "stowage-current-object-bin"
CURRENT_PREFERENCES_KEY = "stowage-current-preferences-bin"
#: Trailing metadata of an ABORTED write in a space: the current ``SpaceObject``
#: (data, version, who changed it and when).
CURRENT_SPACE_OBJECT_KEY = "stowage-current-space-object-bin"
#: Trailing metadata of a PERMISSION_DENIED answer about a role in a space: the
#: role the action needs (``editor``, ``owner``), UTF-8. Without it,
#: PERMISSION_DENIED means a call for another tenant or instance.
ROLE_NEEDED_KEY = "stowage-role-needed-bin"
#: Trailing metadata of an INVALID_ARGUMENT or RESOURCE_EXHAUSTED answer: the
#: refused field's path as :func:`field_path` spells it (``data.tags[1]``, or the
#: quota's ``quotas.maxObjectBytes``), UTF-8 (a path may name any key). The contract
#: travels here, never in the message.
FIELD_KEY = "stowage-field-bin"
#: Trailing metadata of an UNAVAILABLE answer when one of the tenant's stores failed:
#: which (``database`` or ``object-store``) and how (``unreachable``, or ``refused``
#: when it answered with an error), as ``<store> <how>``, UTF-8. The worker's message
#: names the store's address; a caller that must not show it says this instead.
UNAVAILABLE_STORE_KEY = "stowage-unavailable-store-bin"

#: MCP surface: where a tool error's details sit in the result's ``_meta`` (the same
#: JSON is the result's text). An error result has no ``structuredContent``: it
#: would not match the tool's ``outputSchema``, and clients that check it
#: (the MCP Inspector, the TypeScript SDK) would hide the error behind that.
TOOL_ERROR_META_KEY = "stowage.dev/error"


def field_path(parts: Iterable[str | int]) -> str:
    """How a tool error's ``field`` names a value: ``data.tags[1]`` for ``["data", "tags", 1]``.

    One spelling for both sides: the worker's INVALID_ARGUMENT details and the
    gateway's own argument checks name fields the same way.
    """
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


#: What a correlation id may look like; anything else is replaced by a fresh one.
CORRELATION_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")


def new_correlation_id() -> str:
    """A fresh correlation id: 32 hex characters.

    From the process's pseudo-random generator, not ``os.urandom``: an id
    only has to be unlikely to repeat, and a system call per request costs
    more than the rest of making it.
    """
    return f"{random.getrandbits(128):032x}"


#: What a worker instance id may look like (a metadata value: ASCII, no spaces).
INSTANCE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def new_instance_id() -> str:
    """A fresh worker instance id: 32 hex characters, from the system's random source."""
    return secrets.token_hex(16)


#: An internal user id: 32 lowercase hex characters.
USER_ID = re.compile(r"^[0-9a-f]{32}$")


def identity_digest(issuer: str, subject: str) -> str:
    """How a revocation names one identity: the SHA-256 (hex) of ``issuer\\nsubject``.

    The worker records revocations under this digest, not the identity itself
    (so a user's erasure leaves no identity behind in them), and the gateway
    looks tokens up by the same digest.
    """
    return hashlib.sha256(f"{issuer}\n{subject}".encode()).hexdigest()


__all__ = [
    "CORRELATION_ID",
    "CORRELATION_KEY",
    "CURRENT_OBJECT_KEY",
    "CURRENT_PREFERENCES_KEY",
    "CURRENT_SPACE_OBJECT_KEY",
    "FIELD_KEY",
    "INSTANCE",
    "INSTANCE_KEY",
    "ROLE_NEEDED_KEY",
    "TENANT_KEY",
    "TOOL_ERROR_META_KEY",
    "TRACEPARENT_KEY",
    "TRACESTATE_KEY",
    "UNAVAILABLE_STORE_KEY",
    "USER_ID",
    "USER_ID_KEY",
    "field_path",
    "identity_digest",
    "new_correlation_id",
    "new_instance_id",
]
