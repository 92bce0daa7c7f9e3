"""The operator's own exceptions; adapters translate third-party errors into these.

A ``TemporaryError`` is retried after ``delay`` seconds (a region that does not
exist yet, a database that does not answer); a ``PermanentError`` waits for
the Tenant to change (a spec the API server's schema could not refuse).
"""

from __future__ import annotations


class OperatorError(Exception):
    """Base of everything the operator raises on purpose.

    ``reason`` is a CamelCase word for a condition's ``reason`` field.
    """

    reason: str = "Error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason

    @property
    def message(self) -> str:
        return str(self)


class TemporaryError(OperatorError):
    """Retry after ``delay`` seconds."""

    def __init__(self, message: str, *, reason: str | None = None, delay: float = 10.0) -> None:
        super().__init__(message, reason=reason)
        self.delay = delay


class PermanentError(OperatorError):
    """Nothing to do until the resource changes."""


class KubeError(TemporaryError):
    """The Kubernetes API refused or failed a request."""

    reason = "KubernetesError"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class DatabaseError(TemporaryError):
    """The region's PostgreSQL refused or failed a request."""

    reason = "DatabaseError"


class APINotFoundError(KubeError):
    """The object (or its kind) does not exist: HTTP 404."""


class APIConflictError(KubeError):
    """The object exists already, or changed since it was read: HTTP 409."""


class APIGoneError(KubeError):
    """A watch's resource version is too old to resume from: HTTP 410; list again."""
