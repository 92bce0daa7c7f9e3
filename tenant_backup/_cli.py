"""``stowage backup run|drill|restore|list``: one line per step, then the outcome.

Exit status: 0 done; 1 the backup, drill or restore failed (its last line says
why; nothing that looks like a good backup was left, nothing was restored
silently); 2 it could not start (a missing setting or program).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stowage import tracing
from stowage.runtime import logging as _logging
from tenant_backup._archive import Directory
from tenant_backup._commands import drill, list_backups, prune, restore, run_backup
from tenant_backup._errors import ToolMissing
from tenant_backup._postgres import Tools
from tenant_backup._settings import (
    DATABASE_URL_ENV,
    DIR_ENV,
    KEEP_COUNT_ENV,
    KEEP_DAYS_ENV,
    PG_BIN_ENV,
    RESULT_FILE_ENV,
    SCRATCH_ENV,
    BackupSettings,
)

EXIT_OK, EXIT_FAILED, EXIT_UNUSABLE = 0, 1, 2

_SPANS = tracing.Tracer("tenant_backup")

_EPILOG = f"""\
Environment: {DATABASE_URL_ENV} (the tenant Secret's url), {DIR_ENV},
{PG_BIN_ENV}, {KEEP_COUNT_ENV}, {KEEP_DAYS_ENV}, {SCRATCH_ENV},
{RESULT_FILE_ENV}; a flag wins over its variable.

Exit status: 0 done, 1 failed (the last line says why), 2 could not start."""


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    backup = subparsers.add_parser(
        "backup",
        help="back up, drill-restore or restore a tenant's database",
        description="Backups of one tenant's PostgreSQL database in a directory of its region.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = backup.add_subparsers(dest="backup_command", required=True, metavar="COMMAND")
    for add in (_add_run, _add_prune, _add_drill, _add_restore, _add_list):
        add(commands)


def _common(p: argparse.ArgumentParser, database: bool = True) -> None:
    """The options every command has: where the backups are (and the database, if it needs one)."""
    if database:
        p.add_argument("--database-url", help=f"the tenant's database (${DATABASE_URL_ENV})")
    p.add_argument("--dir", help=f"the tenant's backup directory (${DIR_ENV})")
    p.add_argument("--result-file", help=f"write the JSON outcome here (${RESULT_FILE_ENV})")
    if database:
        p.add_argument("--pg-bin", help=f"directory of pg_dump/pg_restore/psql (${PG_BIN_ENV})")


def _retention(p: argparse.ArgumentParser) -> None:
    p.add_argument("--keep-count", help=f"keep the newest N backups (${KEEP_COUNT_ENV})")
    p.add_argument("--keep-days", help=f"keep backups younger than D days (${KEEP_DAYS_ENV})")


def _add_run(commands: argparse._SubParsersAction[Any]) -> None:
    run = commands.add_parser(
        "run",
        help="take a backup now, then prune",
        description="pg_dump (custom format) from an exported snapshot, a manifest beside it, "
        "then prune per the retention (never the newest intact backup).",
    )
    _common(run)
    _retention(run)
    run.set_defaults(handler=_run)


def _add_prune(commands: argparse._SubParsersAction[Any]) -> None:
    prune_ = commands.add_parser(
        "prune",
        help="apply the retention without taking a backup",
        description="Remove backups the retention lets go (never the newest intact one) "
        "and the leftovers of killed runs.",
    )
    _common(prune_, database=False)
    _retention(prune_)
    prune_.set_defaults(handler=_prune)


def _add_drill(commands: argparse._SubParsersAction[Any]) -> None:
    drill = commands.add_parser(
        "drill",
        help="restore the newest backup into a scratch database and check it",
        description="Verify the archive's sha256, restore it into the scratch database, "
        "compare schema revision and row counts with the manifest, then drop (or empty) "
        "the scratch database.",
    )
    _common(drill)
    drill.add_argument("--backup", help="the backup id (default: the newest)")
    drill.add_argument(
        "--scratch-database",
        help=f"an existing database the role owns, emptied after use; else created and "
        f"dropped, which needs CREATEDB (${SCRATCH_ENV}; default <database>_drill)",
    )
    drill.set_defaults(handler=_drill)


def _add_restore(commands: argparse._SubParsersAction[Any]) -> None:
    restore = commands.add_parser(
        "restore",
        help="restore a backup into the tenant's database (replaces its contents)",
        description="Replace the database's contents with the backup in one transaction, "
        "migrate it to the current schema, and erase again every user erased after the "
        "backup (from the database's audit trail and newer backups' manifests).",
    )
    _common(restore)
    restore.add_argument("--backup", required=True, help="the backup id, or 'latest'")
    restore.add_argument(
        "--force",
        action="store_true",
        help="end other sessions of the database instead of refusing",
    )
    restore.add_argument(
        "--erase-user-id",
        action="append",
        default=[],
        metavar="ID",
        help="also erase this internal user id after restoring (repeatable)",
    )
    restore.set_defaults(handler=_restore)


def _add_list(commands: argparse._SubParsersAction[Any]) -> None:
    listing = commands.add_parser("list", help="list the backups, newest first")
    _common(listing, database=False)
    listing.add_argument("--verify", action="store_true", help="check every archive's sha256")
    listing.set_defaults(handler=_list)


def _settings(args: argparse.Namespace, need_database: bool = True) -> BackupSettings:
    return BackupSettings.build(
        os.environ,
        database_url=getattr(args, "database_url", None),
        directory=args.dir,
        pg_bin=getattr(args, "pg_bin", None),
        keep_count=getattr(args, "keep_count", None),
        keep_days=getattr(args, "keep_days", None),
        scratch_database=getattr(args, "scratch_database", None),
        result_file=args.result_file,
        need_database=need_database,
    )


def _say(line: str) -> None:
    print(line, flush=True)


def _write_result(path: Path | None, result: dict[str, Any]) -> None:
    """One JSON line (in a CronJob, /dev/termination-log, which the operator reads)."""
    if path is None:
        return
    try:
        path.write_text(json.dumps(result, separators=(",", ":")) + "\n", encoding="utf-8")
    except OSError as e:
        print(f"could not write the result to {path}: {e}", file=sys.stderr)


Work = Callable[[BackupSettings], tuple[str, dict[str, Any]]]


def _execute(args: argparse.Namespace, command: str, work: Work, need_database: bool = True) -> int:
    """Build the settings, run ``work``, print and record its outcome, return the exit status."""
    from tenant_backup._errors import BackupError, UsageError

    try:
        settings = _settings(args, need_database)
    except UsageError as e:
        print(f"stowage backup {command}: {e}", file=sys.stderr)
        return EXIT_UNUSABLE
    _logging.configure("WARNING")
    # A Job's one trace (the operator passes the chart's OTEL_* variables on); exported at exit.
    tracing.configure("stowage-backup", os.environ)
    started = time.monotonic()
    result: dict[str, Any] = {"command": command, "time": datetime.now(UTC).isoformat()}
    try:
        with _SPANS.span(f"backup.{command}", record_exception=False) as span:
            try:
                summary, fields = work(settings)
            except BackupError as e:
                span.set_attribute("stowage.outcome", e.reason)
                raise
    except BackupError as e:
        _say(f"FAILED {e}")
        result.update(result="Failed", reason=e.reason, message=str(e)[:2000])
        _write_result(settings.result_file, result)
        return EXIT_UNUSABLE if isinstance(e, UsageError | ToolMissing) else EXIT_FAILED
    finally:
        tracing.shutdown()
    _say(f"OK {summary}")
    result.update(result="Succeeded", seconds=round(time.monotonic() - started, 1), **fields)
    _write_result(settings.result_file, result)
    return EXIT_OK


def _tools(settings: BackupSettings) -> Tools:
    return Tools.find(settings.pg_bin)


def _run(args: argparse.Namespace) -> int:
    def work(settings: BackupSettings) -> tuple[str, dict[str, Any]]:
        db = settings.db()
        _say(f"stowage backup run: {db.describe()} into {settings.directory}")
        outcome = run_backup(
            db, Directory(settings.directory), _tools(settings), settings.retention, _say
        )
        m = outcome.manifest
        return f"backup {m.id} ({m.size} bytes)", {
            "backup": m.id,
            "backupTime": m.time.isoformat(),
            "sizeBytes": m.size,
            "revision": m.revision,
            "pruned": len(outcome.pruned),
        }

    return _execute(args, "run", work)


def _prune(args: argparse.Namespace) -> int:
    def work(settings: BackupSettings) -> tuple[str, dict[str, Any]]:
        pruned = prune(Directory(settings.directory), settings.retention, _say)
        return f"pruned {len(pruned)} in {settings.directory}", {"pruned": len(pruned)}

    return _execute(args, "prune", work, need_database=False)


def _drill(args: argparse.Namespace) -> int:
    def work(settings: BackupSettings) -> tuple[str, dict[str, Any]]:
        db = settings.db()
        _say(f"stowage backup drill: {db.describe()}, scratch {settings.scratch_database}")
        outcome = drill(
            db,
            Directory(settings.directory),
            _tools(settings),
            settings.scratch_database,
            _say,
            backup_id=args.backup,
            object_store=settings.object_store,
        )
        m = outcome.manifest
        return f"drill of {m.id} passed in {outcome.seconds:.1f}s", {
            "backup": m.id,
            "backupTime": m.time.isoformat(),
            "sizeBytes": m.size,
        }

    return _execute(args, "drill", work)


def _restore(args: argparse.Namespace) -> int:
    def work(settings: BackupSettings) -> tuple[str, dict[str, Any]]:
        db = settings.db()
        _say(f"stowage backup restore: {args.backup} into {db.describe()}")
        outcome = restore(
            db,
            Directory(settings.directory),
            _tools(settings),
            args.backup,
            _say,
            force=args.force,
            erase_user_ids=args.erase_user_id,
        )
        return f"restored {outcome.manifest.id} into {outcome.database}", {
            "backup": outcome.manifest.id,
            "erasedAgain": len(outcome.erased_again),
        }

    return _execute(args, "restore", work)


def _list(args: argparse.Namespace) -> int:
    def work(settings: BackupSettings) -> tuple[str, dict[str, Any]]:
        listed = list_backups(Directory(settings.directory), check=args.verify)
        _say(f"{'BACKUP':<24} {'TIME':<25} {'SIZE':>12} {'REVISION':<9} {'ROWS':>10}  STATE")
        for item in listed:
            m = item.manifest
            _say(
                f"{m.id:<24} {m.time.isoformat(timespec='seconds'):<25} {m.size:>12} "
                f"{m.revision or '-':<9} {sum(m.tables.values()):>10}  {item.state}"
            )
        return f"{len(listed)} backups in {settings.directory}", {"backups": len(listed)}

    return _execute(args, "list", work, need_database=False)
