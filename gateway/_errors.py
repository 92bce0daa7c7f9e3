"""The gateway's own exceptions. No I/O here.

Adapters translate third-party errors (grpc, httpx, redis, joserfc) into these,
chained with ``from``, so nothing above an adapter handles a library's types.
"""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""


class TenantConfigError(GatewayError, ValueError):
    """The tenant directory is invalid; the message names the field."""


# --- the Kubernetes API (the tenant source) -------------------------------------


class KubeUnavailable(GatewayError):
    """The Kubernetes API could not be read: unreachable, refused (``status``: 401 or 403
    when the gateway's RBAC is missing), or its answer broke off."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class KubeExpired(KubeUnavailable):
    """410 Gone: the resourceVersion a watch started from is too old; list again."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 410)


# --- authentication -----------------------------------------------------------


class AuthError(GatewayError):
    """The token is missing or not acceptable. ``reason`` is a metric label."""

    def __init__(self, reason: str, description: str) -> None:
        super().__init__(description)
        self.reason = reason
        self.description = description


class KeysUnavailable(GatewayError):
    """The issuer's keys could not be fetched."""


class IntrospectionUnavailable(GatewayError):
    """The tenant's introspection endpoint could not be asked (or gave no answer)."""


class RevocationsUnavailable(GatewayError):
    """A tenant's access revocations cannot be read from its worker right now."""


# --- worker outcomes ----------------------------------------------------------


class WorkerError(GatewayError):
    """An outcome of a worker call. ``code`` is what the tool result says."""

    code = "internal"
    retriable = False
    #: The gRPC status code name the worker answered with, for metrics.
    grpc_code = "UNKNOWN"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(WorkerError):
    code = "not_found"


class Conflict(WorkerError):
    """A stale ``expected_version``; ``current`` is the stored state, if sent."""

    code = "conflict"

    def __init__(
        self,
        message: str,
        current: dict[str, Any] | None,
        *,
        changed_by: dict[str, str] | None = None,
        changed_at: str | None = None,
    ) -> None:
        super().__init__(message)
        self.current = current
        #: In a space: who wrote the current version (``member``, ``name``) and when.
        self.changed_by = changed_by
        self.changed_at = changed_at


class PermissionDenied(WorkerError):
    """The caller's role in a space does not allow the action; ``role_needed`` does."""

    code = "permission_denied"

    def __init__(self, message: str, role_needed: str) -> None:
        super().__init__(message)
        self.role_needed = role_needed


class InvalidArgument(WorkerError):
    code = "invalid_argument"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class QuotaExceeded(WorkerError):
    """A quota is reached; ``field`` names it as the Tenant spec does (``quotas.maxBytes``)."""

    code = "quota_exceeded"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class UnreadableData(WorkerError):
    """What is stored cannot travel as JSON (kept from before a limit applied)."""

    code = "unreadable_data"


class LinksUnavailable(WorkerError):
    """File links cannot be signed: the tenant's signing key is missing or unreadable."""

    code = "files_unavailable"


class UnknownUser(WorkerError):
    """The internal user id is gone (erased): resolve the identity again."""

    code = "unknown_user"


class TemporaryError(WorkerError):
    """The worker cannot answer now; the same call may succeed after ``delay`` seconds."""

    code = "unavailable"
    retriable = True

    def __init__(self, message: str, delay: float = 1.0) -> None:
        super().__init__(message)
        self.delay = delay


class StoreUnavailable(TemporaryError):
    """One of the tenant's stores failed the worker: ``store`` (``database``,
    ``object-store``), unreachable or ``refused``. The message says which in words for
    the caller; ``said`` is the worker's own message (it names the store's address: for
    the log, not the answer)."""

    _WHAT = {
        "database": "the tenant's database",
        "object-store": "the tenant's file store (its S3-compatible bucket)",
    }

    def __init__(self, store: str, refused: bool, said: str, delay: float = 1.0) -> None:
        what = self._WHAT.get(store, f"the tenant's {store}")
        how = "refused the worker's request" if refused else "could not be reached"
        super().__init__(f"{what} {how}", delay)
        self.store, self.refused, self.said = store, refused, said


class PermanentError(WorkerError):
    """The worker refused the call for a reason retrying will not fix."""

    code = "internal"


class WrongWorker(TemporaryError):
    """The endpoint reached a worker that is not this tenant's (another tenant's, or
    another instance than the tenant entry names), which refused the call: nothing was
    read or written. Unavailable to the caller until the platform's routing is fixed."""
