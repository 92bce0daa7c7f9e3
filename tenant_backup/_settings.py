"""What one ``stowage backup`` run needs, built once at the entry point. No I/O here.

Every setting is a flag and an environment variable (the CronJobs the operator
creates set the variables); the flag wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from stowage.runtime.config import ConfigError
from tenant_backup._errors import UsageError
from tenant_backup._types import Database, Retention
from tenant_worker import WorkerSettings
from tenant_worker.files import ObjectStoreConfig

DATABASE_URL_ENV = "STOWAGE_DATABASE_URL"
DIR_ENV = "STOWAGE_BACKUP_DIR"
PG_BIN_ENV = "STOWAGE_PG_BIN"
KEEP_COUNT_ENV = "STOWAGE_BACKUP_KEEP_COUNT"
KEEP_DAYS_ENV = "STOWAGE_BACKUP_KEEP_DAYS"
SCRATCH_ENV = "STOWAGE_BACKUP_SCRATCH_DATABASE"
RESULT_FILE_ENV = "STOWAGE_BACKUP_RESULT_FILE"

#: Appended to the tenant's database name for the drill's scratch database.
SCRATCH_SUFFIX = "_drill"


def _number(text: str | None, where: str, cast: type[int] | type[float]) -> int | float | None:
    if text is None or text == "":
        return None
    try:
        return cast(text)
    except ValueError as e:
        raise UsageError(f"{where}: {text!r} is not a number") from e


def _object_store(environ: Mapping[str, str], url: str) -> ObjectStoreConfig | None:
    if not environ.get("STOWAGE_OBJECT_STORE_ENDPOINT"):
        return None
    try:
        worker = WorkerSettings.from_env({**environ, DATABASE_URL_ENV: url or "unused"})
    except ConfigError as e:
        raise UsageError(str(e)) from e
    return worker.object_store()


@dataclass(frozen=True)
class BackupSettings:
    """One run: whose database, which directory, which programs, what to keep.

    - ``database``: from ``--database-url`` or ``STOWAGE_DATABASE_URL`` (the
      tenant Secret's ``url``); its password is never printed.
    - ``directory``: ``--dir`` or ``STOWAGE_BACKUP_DIR``, one per tenant.
    - ``pg_bin``: where pg_dump, pg_restore and psql are (``--pg-bin`` or
      ``STOWAGE_PG_BIN``); PATH when unset.
    - ``retention``: ``--keep-count``/``--keep-days`` (or their variables).
    - ``scratch_database``: the drill's scratch database (``--scratch-database`` or
      ``STOWAGE_BACKUP_SCRATCH_DATABASE``; default ``<database>_drill``).
    - ``result_file``: where to write the one-line JSON result (``--result-file`` or
      ``STOWAGE_BACKUP_RESULT_FILE``; in a CronJob, ``/dev/termination-log``).
    """

    database: Database | None = field(repr=False)
    directory: Path
    pg_bin: Path | None = None
    retention: Retention = field(default_factory=Retention)
    scratch_database: str = ""
    result_file: Path | None = None
    #: The Region's object store, for the drill to read files stored there: the worker's
    #: own ``STOWAGE_OBJECT_STORE_*`` variables, read by the worker's settings.
    object_store: ObjectStoreConfig | None = field(default=None, repr=False)

    @classmethod
    def build(
        cls,
        environ: Mapping[str, str],
        *,
        database_url: str | None,
        directory: str | None,
        pg_bin: str | None = None,
        keep_count: str | None = None,
        keep_days: str | None = None,
        scratch_database: str | None = None,
        result_file: str | None = None,
        need_database: bool = True,
    ) -> BackupSettings:
        url = database_url or environ.get(DATABASE_URL_ENV, "")
        if not url and need_database:
            raise UsageError(f"a database is required: --database-url or ${DATABASE_URL_ENV}")
        where = directory or environ.get(DIR_ENV, "")
        if not where:
            raise UsageError(f"a backup directory is required: --dir or ${DIR_ENV}")
        db = Database.from_url(url) if url else None
        count = _number(keep_count or environ.get(KEEP_COUNT_ENV), "--keep-count", int)
        days = _number(keep_days or environ.get(KEEP_DAYS_ENV), "--keep-days", float)
        scratch = scratch_database or environ.get(SCRATCH_ENV, "")
        if not scratch and db is not None:
            scratch = db.dbname + SCRATCH_SUFFIX
        if len(scratch.encode()) > 63:
            raise UsageError(
                f"the scratch database name {scratch!r} is longer than 63 bytes: "
                f"give --scratch-database or ${SCRATCH_ENV}"
            )
        bin_dir = pg_bin or environ.get(PG_BIN_ENV, "")
        result = result_file or environ.get(RESULT_FILE_ENV, "")
        return cls(
            database=db,
            directory=Path(where),
            pg_bin=Path(bin_dir) if bin_dir else None,
            retention=Retention(
                keep_count=None if count is None else int(count),
                keep_days=None if days is None else float(days),
            ),
            scratch_database=scratch,
            result_file=Path(result) if result else None,
            object_store=_object_store(environ, url),
        )

    def db(self) -> Database:
        if self.database is None:
            raise UsageError(f"a database is required: --database-url or ${DATABASE_URL_ENV}")
        return self.database
