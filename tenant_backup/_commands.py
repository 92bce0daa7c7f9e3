"""The steps of ``stowage backup run|drill|restore|list``; each step reports one line.

``say`` receives a line per step (the CLI prints them); a failed step raises a
``BackupError`` whose message is the run's last line.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tenant_backup import _objects
from tenant_backup import _postgres as pg
from tenant_backup._archive import Directory, checksum, new_id, verify
from tenant_backup._errors import BackupCorrupt, BackupError, DatabaseInUse, VerificationFailed
from tenant_backup._types import Database, Erasure, FileCheck, Manifest, Retention
from tenant_worker.files import ObjectStoreConfig

log = logging.getLogger(__name__)

Say = Callable[[str], None]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _rows(tables: Mapping[str, int]) -> int:
    return sum(tables.values())


@dataclass(frozen=True)
class BackupOutcome:
    manifest: Manifest
    pruned: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DrillOutcome:
    manifest: Manifest
    seconds: float


@dataclass(frozen=True)
class RestoreOutcome:
    manifest: Manifest
    database: str
    erased_again: list[str]


def run_backup(
    db: Database, directory: Directory, tools: pg.Tools, retention: Retention, say: Say
) -> BackupOutcome:
    """Dump ``db`` from one snapshot into ``directory``, write its manifest, prune."""
    directory.ensure()
    started = time.monotonic()
    version = tools.version()
    with pg.snapshot(db) as snap:
        rows = _rows(snap.contents.tables)
        say(
            f"snapshot {snap.id} of {db.dbname} at {snap.time.isoformat(timespec='seconds')}: "
            f"revision {snap.contents.revision}, {len(snap.contents.tables)} tables, {rows} rows"
        )
        backup_id = new_id(snap.time.astimezone(UTC))
        with directory.staging(backup_id) as (f, partial):
            pg.dump(tools, db, snap.id, f)
            size, digest = checksum(partial)
            manifest = Manifest(
                id=backup_id,
                time=snap.time.astimezone(UTC),
                database=db.dbname,
                file=f"{backup_id}.dump",
                size=size,
                sha256=digest,
                revision=snap.contents.revision,
                tables=snap.contents.tables,
                erasures=snap.erasures,
                pg_dump_version=version,
                duration_seconds=time.monotonic() - started,
            )
            directory.commit(manifest, partial)
    say(f"wrote {manifest.file} ({size} bytes, sha256 {digest}) and {manifest.id}.json")
    pruned = prune(directory, retention, say)
    return BackupOutcome(manifest, pruned)


def newest_good(directory: Directory, backups: list[Manifest]) -> Manifest | None:
    """The newest backup whose archive matches its manifest (size and sha256)."""
    for manifest in backups:
        try:
            verify(directory, manifest)
        except BackupError:
            continue
        return manifest
    return None


def prune(directory: Directory, retention: Retention, say: Say) -> list[str]:
    """Remove what the retention lets go and the leftovers of killed runs."""
    now = _utcnow()
    backups = directory.backups()
    good = newest_good(directory, backups)
    pruned: list[str] = []
    if good is None:
        say(f"pruned nothing: no intact backup in {directory.path}")
        return pruned
    for manifest in retention.expired(backups, now, good.id):
        directory.remove(manifest)
        pruned.append(manifest.id)
    for path in directory.leftovers(now):
        path.unlink(missing_ok=True)
        pruned.append(path.name)
    kept = len(backups) - sum(1 for m in backups if m.id in pruned)
    rules = []
    if retention.keep_count is not None:
        rules.append(f"keep {retention.keep_count}")
    if retention.keep_days is not None:
        rules.append(f"keep {retention.keep_days:g} days")
    say(
        f"pruned {len(pruned)} ({', '.join(pruned) or 'none'}); {kept} backups kept "
        f"({', '.join(rules) or 'keep all'}; newest intact {good.id})"
    )
    return pruned


def _compare(manifest: Manifest, found: pg.Contents) -> None:
    problems = []
    if found.revision != manifest.revision:
        problems.append(f"schema revision {found.revision}, manifest says {manifest.revision}")
    missing = sorted(set(manifest.tables) - set(found.tables))
    extra = sorted(set(found.tables) - set(manifest.tables))
    if missing:
        problems.append(f"tables missing: {', '.join(missing)}")
    if extra:
        problems.append(f"tables not in the manifest: {', '.join(extra)}")
    for name in sorted(set(manifest.tables) & set(found.tables)):
        if manifest.tables[name] != found.tables[name]:
            problems.append(
                f"{name} has {found.tables[name]} rows, manifest says {manifest.tables[name]}"
            )
    if problems:
        raise VerificationFailed(
            f"the restored copy of {manifest.id} differs from its manifest: " + "; ".join(problems)
        )


def _say_files(manifest: Manifest, files: FileCheck | None, say: Say) -> None:
    """The drill's line on file checksums; VerificationFailed when a file's bytes are wrong."""
    if files is None:
        say("file checksums: no files table at this revision")
        return
    if not files.ok:
        problems = list(files.problems)
        if files.bad_files > len(problems):
            problems.append(f"{files.bad_files - len(problems)} more")
        if files.stray_chunks:
            problems.append(f"{files.stray_chunks} chunks that no file holds")
        raise VerificationFailed(
            f"the restored copy of {manifest.id} fails its file checksums "
            f"({files.bad_files} of {files.files} files wrong): " + "; ".join(problems)
        )
    stored = f", {files.in_bucket} of them in the object store" if files.in_bucket else ""
    gone = (
        f"; {files.gone_since} objects deleted since the backup, as in the live database"
        if files.gone_since
        else ""
    )
    say(
        f"file checksums ok: {files.files} files{stored}, {files.bytes} bytes; every file's "
        f"bytes hash to its recorded sha256{gone}"
    )


def _check_objects(
    files: FileCheck,
    found: list[tuple[str, int, str | None, str]],
    object_store: ObjectStoreConfig | None,
    live: Database,
) -> FileCheck:
    """``files`` with the files whose bytes are in the object store read back too.

    An object that is gone counts as wrong unless the live database no longer holds that
    version either (deleted or replaced since the backup, which does not carry objects).
    """
    if not found:
        return files
    if object_store is None:
        raise VerificationFailed(
            f"{len(found)} files of the restored copy are in the Region's object store, which "
            "this drill was not given: set STOWAGE_OBJECT_STORE_* as for the tenant's worker"
        )
    problems, bad, total, gone = list(files.problems), files.bad_files, files.bytes, 0
    names = {content: f"files/{content}" for _, _, _, content in found}
    try:
        digests = _objects.digests(object_store, list(names.values()))
    except _objects.BucketUnavailable as e:
        raise VerificationFailed(f"the files in the object store cannot be read: {e}") from e
    missing = [content for content in names if digests[names[content]] is None]
    with pg.connect(live) as conn:
        still_held = pg.held_contents(conn, missing)
    for file_id, size, recorded, content in found:
        digest = digests[names[content]]
        if digest is None and content not in still_held:
            gone += 1
            continue
        if digest is None:
            problem = f"file {file_id}: its object {names[content]} is not in the object store"
        elif digest != (size, recorded):
            problem = pg.file_problem(file_id, size, recorded, *digest)
        else:
            total += size
            continue
        bad += 1
        if len(problems) < 5:
            problems.append(problem)
    return dataclasses.replace(
        files,
        files=files.files + len(found) - gone,
        bytes=total,
        bad_files=bad,
        problems=tuple(problems),
        in_bucket=len(found) - gone,
        gone_since=gone,
    )


def drill(
    db: Database,
    directory: Directory,
    tools: pg.Tools,
    scratch_name: str,
    say: Say,
    backup_id: str | None = None,
    object_store: ObjectStoreConfig | None = None,
) -> DrillOutcome:
    """Restore a backup (the newest by default) into a scratch database and check it;
    files in the Region's object store are read from ``object_store``."""
    if scratch_name == db.dbname:
        raise BackupError("the scratch database must not be the tenant's own database")
    started = time.monotonic()
    manifest = directory.find(backup_id)
    say(
        f"backup {manifest.id} of {manifest.database} taken "
        f"{manifest.time.isoformat(timespec='seconds')}, {manifest.size} bytes"
    )
    verify(directory, manifest)
    say(f"checksum ok: sha256 {manifest.sha256}")
    scratch = db.other(scratch_name)
    created = not pg.database_exists(db, scratch_name)
    if created:
        pg.create_database(db, scratch_name)
        say(f"created scratch database {scratch_name}")
    try:
        pg.load(tools, scratch, directory.archive(manifest))
        say(f"restored into {scratch_name} in {time.monotonic() - started:.1f}s")
        with pg.connect(scratch) as conn:
            found = pg.read_contents(conn)
        _compare(manifest, found)
        say(
            f"verified: revision {found.revision}, {len(found.tables)} tables and "
            f"{_rows(found.tables)} rows match the manifest"
        )
        with pg.connect(scratch) as conn:
            files = pg.check_files(conn)
            in_bucket = pg.bucket_files(conn)
        if files is not None:
            files = _check_objects(files, in_bucket, object_store, db)
        _say_files(manifest, files, say)
    finally:
        _clean_scratch(db, scratch, created, say)
    return DrillOutcome(manifest, time.monotonic() - started)


def _clean_scratch(db: Database, scratch: Database, created: bool, say: Say) -> None:
    try:
        if created:
            pg.drop_database(db, scratch.dbname)
            say(f"dropped scratch database {scratch.dbname}")
        else:
            pg.empty(scratch)
            say(f"emptied scratch database {scratch.dbname}")
    except BackupError as e:
        # The drill's own outcome stands; a scratch database left behind is only untidy.
        log.warning("could not clean the scratch database %s: %s", scratch.dbname, e)
        say(f"could not clean scratch database {scratch.dbname}: {e}")


#: Of two policies recorded for one user, the one a replay keeps: ``delete`` keeps less.
_STRICTER = ("delete", "pseudonymise")


def _stricter(a: str | None, b: str | None) -> str | None:
    """The policy to replay when two records of one erasure disagree.

    A recorded policy beats none (an older manifest that did not record it);
    of two recorded ones, ``delete``.
    """
    if a is None or b is None:
        return a if b is None else b
    return min(a, b, key=lambda p: _STRICTER.index(p) if p in _STRICTER else -1)


def _erasures_to_replay(
    manifest: Manifest,
    later: Iterable[Manifest],
    live: Iterable[Erasure],
    extra: Iterable[str],
) -> dict[str, str | None]:
    """User ids erased after the backup (known to the live database, a newer backup or
    the operator, and not erased in the backup itself), each with the shared-space
    policy its erasure recorded, or None (the operator's, or none recorded)."""
    known = {e.user_id for e in manifest.erasures}
    wanted: dict[str, str | None] = dict.fromkeys(extra)
    for erasure in [*live, *(e for newer in later for e in newer.erasures)]:
        wanted[erasure.user_id] = _stricter(wanted.get(erasure.user_id), erasure.space_erasure)
    return {u: wanted[u] for u in sorted(wanted) if u not in known}


def _policies(pending: Mapping[str, str | None]) -> str:
    """How many erasures replay as which shared-space policy (none recorded: delete)."""
    counts = Counter(
        "delete (none recorded)" if p is None else p if p in _STRICTER else f"delete ({p} unknown)"
        for p in pending.values()
    )
    return ", ".join(f"{n} {name}" for name, n in sorted(counts.items()))


def _rerun_flags(pending: Mapping[str, str | None]) -> str:
    """How to run a failed restore again so that it still erases ``pending``."""
    if not pending:
        return ""
    return (
        " with "
        + " ".join(f"--erase-user-id {u}" for u in pending)
        + " (in shared spaces, what they wrote is deleted unless a newer backup recorded "
        "their erasure's policy)"
    )


def restore(
    db: Database,
    directory: Directory,
    tools: pg.Tools,
    backup_id: str,
    say: Say,
    *,
    force: bool = False,
    erase_user_ids: Iterable[str] = (),
) -> RestoreOutcome:
    """Load a backup into ``db`` in one transaction, migrate it, replay later erasures."""
    from tenant_worker import migrate, replay_erasures

    manifest = directory.find(None if backup_id == "latest" else backup_id)
    say(
        f"backup {manifest.id} of {manifest.database} taken "
        f"{manifest.time.isoformat(timespec='seconds')}, revision {manifest.revision}"
    )
    verify(directory, manifest)
    say(f"checksum ok: sha256 {manifest.sha256}")
    with pg.connect(db) as conn:
        sessions = pg.other_sessions(conn)
        if sessions and not force:
            who = ", ".join(f"{s.user or '?'}/{s.application or '-'}" for s in sessions[:5])
            raise DatabaseInUse(
                f"{db.dbname} is in use by {len(sessions)} other session(s) ({who}); stop the "
                "tenant's worker first (scale its Deployment to 0), or pass --force to end them"
            )
        if sessions:
            refused = pg.terminate(conn, sessions)
            say(f"--force: ended {len(sessions) - len(refused)} of {len(sessions)} other sessions")
        live = pg.read_erasures(conn)
    later = [m for m in directory.backups() if (m.time, m.id) > (manifest.time, manifest.id)]
    pending = _erasures_to_replay(manifest, later, live, erase_user_ids)
    say(
        f"{len(pending)} erasure(s) recorded after the backup (live audit trail: {len(live)} "
        f"erasures, {len(later)} newer backups) will be replayed"
    )
    if pending:
        say(f"in shared spaces, as each erasure recorded: {_policies(pending)}")
    pg.load(tools, db, directory.archive(manifest))
    say(f"restored {manifest.id} into {db.dbname} (one transaction; the old contents are gone)")
    try:
        migrate(db.sqlalchemy_url())
        with pg.connect(db) as conn:
            revision = pg.read_contents(conn).revision
        say(f"schema at revision {revision}")
        replayed = asyncio.run(
            replay_erasures(db.sqlalchemy_url(), pending, correlation_id=f"restore-{manifest.id}")
        )
    except Exception as e:  # the load committed: whatever failed, say which users to erase
        raise BackupError(
            f"restored {manifest.id}, but migrating or replaying erasures failed ({e}); keep the "
            "worker stopped and run this restore again" + _rerun_flags(pending)
        ) from e
    objects = sum(r.objects_deleted for r in replayed)
    files = sum(r.files_deleted for r in replayed)
    say(
        f"erased again {len(replayed)} user(s) whose data the backup still held "
        f"({objects} objects, {files} files); {len(pending) - len(replayed)} were not in it"
    )
    return RestoreOutcome(manifest, db.dbname, [r.user_id for r in replayed])


@dataclass(frozen=True)
class Listed:
    manifest: Manifest
    state: str


def list_backups(directory: Directory, check: bool) -> list[Listed]:
    """Every backup, newest first, with ``intact``/``damaged: …`` (sha256 only with ``check``)."""
    listed = []
    for manifest in directory.backups():
        path = directory.archive(manifest)
        state = "complete"
        if not path.is_file():
            state = "damaged: archive missing"
        elif path.stat().st_size != manifest.size:
            state = "damaged: size differs from the manifest"
        elif check:
            try:
                verify(directory, manifest)
                state = "intact (sha256 checked)"
            except BackupCorrupt:
                state = "damaged: sha256 differs from the manifest"
        listed.append(Listed(manifest, state))
    return listed
