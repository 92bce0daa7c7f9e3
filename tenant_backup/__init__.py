"""Backups of one tenant's database: take, prove by restoring, restore (``stowage backup``).

A backup is a ``pg_dump`` custom-format archive taken from an exported
repeatable-read snapshot (writers are never blocked), with a JSON manifest
beside it whose table row counts, Alembic revision and erasure list (each
erasure with the shared-space policy it recorded) were read in that same
snapshot. A drill restores the newest backup into a scratch
database and checks it against its manifest; a restore loads a chosen backup
into the tenant's database in one transaction and replays the erasures made
since, each as it was done (an erasure that recorded no policy: ``delete``).

Layers: ``_cli`` (entry point) → ``_commands`` (the steps of run, drill,
restore, list) → ``_archive`` (the backup directory) | ``_postgres`` (psycopg
and the PostgreSQL client programs) → ``_types`` and ``_errors`` (values, no
I/O). It uses the tenant's own credentials and imports neither the gateway nor
the operator; from the worker it takes only its public ``migrate`` and
``replay_erasures``.
"""

from tenant_backup._commands import BackupOutcome, DrillOutcome, RestoreOutcome
from tenant_backup._errors import BackupError
from tenant_backup._types import Manifest, Retention

__all__ = [
    "BackupError",
    "BackupOutcome",
    "DrillOutcome",
    "Manifest",
    "RestoreOutcome",
    "Retention",
]
