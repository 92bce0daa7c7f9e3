"""What can go wrong, as the project's own exceptions (no I/O here).

Every message says what happened and, where there is one, what to do; the CLI
prints it as the run's last line.
"""

from __future__ import annotations


class BackupError(Exception):
    """A backup, drill or restore could not be done; nothing that looks good was left."""

    #: A short machine-readable name, for the result file and the Tenant's status.
    reason = "Failed"


class UsageError(BackupError):
    """A setting is missing or malformed; the message names the flag and variable."""

    reason = "InvalidSettings"


class ToolMissing(BackupError):
    """pg_dump, pg_restore or psql was not found."""

    reason = "ToolMissing"


class DatabaseUnavailable(BackupError):
    """The database refused the connection or a statement."""

    reason = "DatabaseUnavailable"


class DumpFailed(BackupError):
    """pg_dump or the restore of an archive failed."""

    reason = "DumpFailed"


class NoBackup(BackupError):
    """The directory holds no complete backup (or not the one asked for)."""

    reason = "NoBackup"


class BackupCorrupt(BackupError):
    """The archive's size or sha256 differs from its manifest: it must not be restored."""

    reason = "Corrupt"


class VerificationFailed(BackupError):
    """A restored copy differs from its manifest (revision, tables or row counts)."""

    reason = "VerificationFailed"


class DatabaseInUse(BackupError):
    """The target database has other sessions; restoring would pull data from under them."""

    reason = "DatabaseInUse"
