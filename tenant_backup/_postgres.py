"""Adapter: the tenant's PostgreSQL, through psycopg and the client programs.

psycopg errors become ``DatabaseUnavailable``, failing programs ``DumpFailed``,
each with a message that names the database and never a password (which
reaches the programs as ``PGPASSWORD``, not on a command line).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

import psycopg
from psycopg import sql

from tenant_backup._errors import DatabaseUnavailable, DumpFailed, ToolMissing
from tenant_backup._types import Database, Erasure, FileCheck

log = logging.getLogger(__name__)

Connection = psycopg.Connection[tuple[object, ...]]

#: How long a restore waits for a lock on the schema before giving up.
LOCK_TIMEOUT = "30s"


@dataclass(frozen=True)
class Tools:
    """The PostgreSQL client programs: from ``--pg-bin`` when given, else from PATH."""

    pg_dump: Path
    pg_restore: Path
    psql: Path

    @classmethod
    def find(cls, pg_bin: Path | None) -> Tools:
        found: dict[str, Path] = {}
        for name in ("pg_dump", "pg_restore", "psql"):
            if pg_bin is not None:
                candidate = pg_bin / name
                if not (candidate.is_file() and os.access(candidate, os.X_OK)):
                    raise ToolMissing(f"{name} is not in {pg_bin} (--pg-bin)")
                found[name] = candidate
                continue
            on_path = shutil.which(name)
            if on_path is None:
                raise ToolMissing(
                    f"{name} is not on PATH: install the PostgreSQL client programs "
                    "(postgresql-client, the server's major version or newer) or give --pg-bin"
                )
            found[name] = Path(on_path)
        return cls(found["pg_dump"], found["pg_restore"], found["psql"])

    def version(self) -> str:
        done = subprocess.run(
            [str(self.pg_dump), "--version"], capture_output=True, text=True, check=False
        )
        return done.stdout.strip()


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


@contextmanager
def connect(db: Database, autocommit: bool = True) -> Iterator[Connection]:
    """A connection to ``db``; errors become DatabaseUnavailable."""
    try:
        conn = psycopg.connect(**db.conninfo(), autocommit=autocommit, connect_timeout=10)
    except psycopg.Error as e:
        raise DatabaseUnavailable(f"cannot connect to {db.describe()}: {_first_line(e)}") from e
    try:
        with conn:
            yield conn
    except psycopg.Error as e:
        raise DatabaseUnavailable(f"{db.dbname}: {_first_line(e)}") from e


@dataclass(frozen=True)
class Contents:
    """What a database holds, as the manifest records it."""

    revision: str | None
    tables: dict[str, int]


@dataclass(frozen=True)
class Snapshot:
    """An exported snapshot, held open while pg_dump reads it, and what it shows."""

    id: str
    time: datetime
    contents: Contents
    erasures: tuple[Erasure, ...]


def _has_table(conn: Connection, name: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"public.{name}",)).fetchone()
    return bool(row and row[0])


def read_contents(conn: Connection) -> Contents:
    """The Alembic revision and the row count of every table in ``public``."""
    names = [
        str(r[0])
        for r in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY c.relname"
        ).fetchall()
    ]
    tables: dict[str, int] = {}
    for name in names:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("public", name))
        ).fetchone()
        tables[name] = int(str(row[0])) if row else 0
    revision = None
    if "alembic_version" in tables:
        row = conn.execute("SELECT version_num FROM public.alembic_version").fetchone()
        revision = str(row[0]) if row else None
    return Contents(revision, tables)


def read_erasures(conn: Connection) -> tuple[Erasure, ...]:
    """The ``user.erase`` events of the audit trail, oldest first (none without one),
    each with the shared-space policy its row records (``detail.space_erasure``)."""
    if not _has_table(conn, "audit_events"):
        return ()
    rows = conn.execute(
        "SELECT user_id, at, detail ->> 'space_erasure' FROM public.audit_events "
        "WHERE action = 'user.erase' AND user_id IS NOT NULL ORDER BY at, id"
    ).fetchall()
    return tuple(
        Erasure(str(r[0]), r[1], None if r[2] is None else str(r[2]))
        for r in rows
        if isinstance(r[1], datetime)
    )


#: File problems named in a FileCheck (the rest are only counted).
_NAMED_PROBLEMS = 5
#: Chunks (256 KiB each at most) fetched at a time while files are read back.
_CHUNKS_PER_FETCH = 16


def file_problem(file_id: str, size: int, recorded: str | None, got: int, digest: str) -> str:
    if recorded is None:
        return f"file {file_id} has content but no recorded sha256"
    if got != size:
        return f"file {file_id} records {size} bytes, its chunks hold {got}"
    return f"file {file_id} records sha256 {recorded}, its chunks hash to {digest}"


def _has_column(conn: Connection, table: str, column: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = %s AND column_name = %s",
        (table, column),
    ).fetchone()
    return row is not None


def bucket_files(conn: Connection) -> list[tuple[str, int, str | None, str]]:
    """(id, size, sha256, content) of every file whose bytes are in the object store."""
    if not _has_column(conn, "files", "storage"):
        return []
    rows = conn.execute(
        "SELECT id, size_bytes, sha256, content FROM public.files "
        "WHERE storage = 'bucket' AND content IS NOT NULL ORDER BY id"
    ).fetchall()
    return [
        (str(r[0]), int(str(r[1])), None if r[2] is None else str(r[2]), str(r[3])) for r in rows
    ]


def held_contents(conn: Connection, contents: list[str]) -> set[str]:
    """Which of ``contents`` a file of this database still points at."""
    if not contents or not _has_column(conn, "files", "storage"):
        return set()
    rows = conn.execute(
        "SELECT content FROM public.files WHERE content = ANY(%s)", (contents,)
    ).fetchall()
    return {str(r[0]) for r in rows}


def check_files(conn: Connection) -> FileCheck | None:
    """Read every uploaded file's chunks in order, a few at a time (memory stays flat in
    the file's size), and compare their sha256 and length with what the file records;
    count chunks no file's current content holds. None without a ``files`` table (a
    database from before files)."""
    if not _has_table(conn, "files"):
        return None
    files = total = bad = 0
    problems: list[str] = []

    def finish(file_id: str, size: int, recorded: str | None, got: int, digest: str) -> None:
        nonlocal files, total, bad
        files, total = files + 1, total + got
        if recorded != digest or got != size:
            bad += 1
            if len(problems) < _NAMED_PROBLEMS:
                problems.append(file_problem(file_id, size, recorded, got, digest))

    # Files whose bytes are in the Region's object store are read by ``bucket_files``.
    in_database = " AND f.storage = 'database'" if _has_column(conn, "files", "storage") else ""
    with conn.transaction(), conn.cursor(name="stowage_file_check") as cur:
        cur.itersize = _CHUNKS_PER_FETCH
        cur.execute(
            "SELECT f.id, f.size_bytes, f.sha256, c.data FROM public.files f "
            "LEFT JOIN public.file_chunks c ON c.content = f.content "
            f"WHERE f.content IS NOT NULL{in_database} ORDER BY f.id, c.seq"
        )
        current: tuple[str, int, str | None] | None = None
        hasher, got = hashlib.sha256(), 0
        for file_id, size, recorded, data in cur:
            if current is None or current[0] != file_id:
                if current is not None:
                    finish(*current, got, hasher.hexdigest())
                current = (
                    str(file_id),
                    int(str(size)),
                    None if recorded is None else str(recorded),
                )
                hasher, got = hashlib.sha256(), 0
            if isinstance(data, bytes | memoryview):
                hasher.update(data)
                got += len(data)
        if current is not None:
            finish(*current, got, hasher.hexdigest())
    row = conn.execute(
        "SELECT count(*) FROM public.file_chunks c WHERE NOT EXISTS "
        "(SELECT 1 FROM public.files f WHERE f.content = c.content)"
    ).fetchone()
    stray = int(str(row[0])) if row else 0
    return FileCheck(files, total, bad, tuple(problems), stray)


@contextmanager
def snapshot(db: Database) -> Iterator[Snapshot]:
    """Export a repeatable-read snapshot and read the manifest's facts in it.

    The transaction stays open (read-only, blocking no writer) until the block
    ends, so ``pg_dump --snapshot`` sees exactly what the counts saw.
    """
    with connect(db, autocommit=False) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        row = conn.execute("SELECT pg_export_snapshot(), now()").fetchone()
        assert row is not None
        snapshot_id, time = str(row[0]), row[1]
        assert isinstance(time, datetime)
        yield Snapshot(snapshot_id, time, read_contents(conn), read_erasures(conn))
        conn.rollback()


def _stderr_tail(path: Path) -> str:
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    return "; ".join(lines[-3:]) if lines else "no message"


def dump(tools: Tools, db: Database, snapshot_id: str, dest: IO[bytes]) -> None:
    """pg_dump (custom format) of ``db`` as of ``snapshot_id`` into ``dest``."""
    env = {**os.environ, **db.environment()}
    with tempfile.TemporaryDirectory(prefix="stowage-backup-") as tmp:
        errors = Path(tmp) / "stderr"
        with errors.open("wb") as err:
            done = subprocess.run(
                [str(tools.pg_dump), "--format=custom", f"--snapshot={snapshot_id}"],
                stdout=dest,
                stderr=err,
                env=env,
                check=False,
            )
        if done.returncode != 0:
            raise DumpFailed(f"pg_dump of {db.dbname} failed: {_stderr_tail(errors)}")


def _pipe_in_one_transaction(
    reader: subprocess.Popen[bytes], writer: subprocess.Popen[bytes]
) -> bool:
    """Feed pg_restore's SQL to psql after a fresh schema, all inside BEGIN … COMMIT.

    COMMIT is sent only when pg_restore ended well; returns whether it was.
    Either way both programs have ended on return.
    """
    assert reader.stdout is not None and writer.stdin is not None
    complete = False
    try:
        writer.stdin.write(
            f"SET lock_timeout = '{LOCK_TIMEOUT}';\nBEGIN;\n"
            "DROP SCHEMA IF EXISTS public CASCADE;\nCREATE SCHEMA public;\n".encode()
        )
        shutil.copyfileobj(reader.stdout, writer.stdin, 1 << 20)
        complete = reader.wait() == 0
        if complete:
            writer.stdin.write(b"COMMIT;\n")
    except BrokenPipeError:
        pass  # psql stopped at an error; its stderr says which
    finally:
        reader.stdout.close()
        if reader.poll() is None:
            reader.kill()
        reader.wait()
        with suppress(BrokenPipeError):
            writer.stdin.close()
        writer.wait()
    return complete


def load(tools: Tools, db: Database, archive: Path) -> None:
    """Replace everything in ``db``'s ``public`` schema by ``archive``, in one transaction.

    pg_restore turns the archive into SQL which psql runs after dropping and
    recreating the schema, inside one BEGIN … COMMIT; the COMMIT is sent only
    when pg_restore read the whole archive without error. A corrupt archive, a
    failing statement or a lost connection therefore leaves ``db`` as it was.
    """
    env = {**os.environ, **db.environment()}
    with tempfile.TemporaryDirectory(prefix="stowage-restore-") as tmp:
        restore_err, psql_err = Path(tmp) / "pg_restore", Path(tmp) / "psql"
        with restore_err.open("wb") as rerr, psql_err.open("wb") as perr:
            reader = subprocess.Popen(
                [
                    str(tools.pg_restore),
                    "--no-owner",
                    "--no-privileges",
                    "--exit-on-error",
                    "--file=-",
                    str(archive),
                ],
                stdout=subprocess.PIPE,
                stderr=rerr,
                env=env,
            )
            writer = subprocess.Popen(
                [str(tools.psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=perr,
                env=env,
            )
            complete = _pipe_in_one_transaction(reader, writer)
        if reader.returncode != 0:
            raise DumpFailed(
                f"pg_restore could not read {archive.name}: {_stderr_tail(restore_err)}; "
                f"{db.dbname} was left unchanged"
            )
        if writer.returncode != 0 or not complete:
            raise DumpFailed(
                f"restoring {archive.name} into {db.dbname} failed: {_stderr_tail(psql_err)}; "
                f"{db.dbname} was left unchanged"
            )


def empty(db: Database) -> None:
    """Drop everything in ``db``'s ``public`` schema (the drill's scratch database)."""
    with connect(db) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")


def database_exists(db: Database, name: str) -> bool:
    with connect(db) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        return row is not None


def create_database(db: Database, name: str) -> None:
    """CREATE DATABASE ``name`` from a connection to ``db`` (the role needs CREATEDB)."""
    with connect(db) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(name)))


def drop_database(db: Database, name: str) -> None:
    with connect(db) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@dataclass(frozen=True)
class Session:
    pid: int
    user: str
    application: str


def other_sessions(conn: Connection) -> list[Session]:
    """Sessions on the connected database other than this one."""
    rows = conn.execute(
        "SELECT pid, coalesce(usename, ''), coalesce(application_name, '') "
        "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND backend_type = 'client backend' ORDER BY pid"
    ).fetchall()
    return [Session(int(str(r[0])), str(r[1]), str(r[2])) for r in rows]


def terminate(conn: Connection, sessions: list[Session]) -> list[Session]:
    """Ask each session to end; return those that could not be ended (another role's)."""
    refused = []
    for s in sessions:
        try:
            conn.execute("SELECT pg_terminate_backend(%s)", (s.pid,))
        except psycopg.errors.InsufficientPrivilege:
            refused.append(s)
    return refused
