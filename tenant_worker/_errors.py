"""The worker's domain outcomes; the servicer maps each to a gRPC status.

Third-party errors (SQLAlchemy, psycopg) are translated into these at the
database adapter, chained with ``from``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tenant_worker._records import ObjectRecord, PreferencesRecord, SpaceObjectRecord


class WorkerError(Exception):
    """Base of every outcome the worker reports to its caller."""


class NotFound(WorkerError):
    pass


class InvalidArgument(WorkerError):
    """A refused value; ``field`` is its path (``data.tags[1]``), sent as a field of the answer."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class Conflict(WorkerError):
    """A stale ``expected_version``; carries the current object or preferences."""

    def __init__(
        self, message: str, current: ObjectRecord | PreferencesRecord | SpaceObjectRecord | None
    ) -> None:
        super().__init__(message)
        self.current = current


class QuotaExceeded(WorkerError):
    """A write that would pass ``limit`` (``maxObjects``, ``perUser.maxBytes``, …)."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit
        #: The quota as the Tenant spec names it, sent like an invalid argument's field.
        self.field = f"quotas.{limit}"


class UnknownUser(WorkerError):
    """The internal user id does not exist (never resolved, or erased)."""


class Unauthenticated(WorkerError):
    pass


class WrongTenant(WorkerError):
    """The call names another tenant than the one this worker serves (a misrouted call)."""


class WrongInstance(WorkerError):
    """The call names another instance than this worker's: its caller expects another run
    of the tenant's worker (one a killed platform left behind answers in its place)."""


class StorageUnavailable(WorkerError):
    """The tenant's data cannot be written or read now; retriable.

    ``store`` names the store that failed (``database``, ``object-store``), and
    ``refused`` whether it answered with an error rather than not at all; no store
    when none failed (a write that kept losing races).
    """

    def __init__(self, message: str, store: str | None = "database", refused: bool = False):
        super().__init__(message)
        self.store = store
        self.refused = refused


class WriteRace(WorkerError):
    """A concurrent write took the same key first (a unique key, a lock order).

    Raised by the database adapter; the write path runs the call again, which
    then sees the other write (a replay, a conflict or a plain replace).
    """


class PermissionDenied(WorkerError):
    """The caller is a member of the space, but their role does not allow the action."""

    def __init__(self, role_needed: str, message: str) -> None:
        super().__init__(message)
        self.role_needed = role_needed
