"""A throwaway PostgreSQL cluster started with ``initdb``/``pg_ctl`` on loopback.

Set ``STOWAGE_TEST_POSTGRES_URL`` (``postgresql://user:pw@host:port/db`` of a
superuser) to use an existing server instead.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.support.tools import find_program, free_port, missing

PG_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
HOW = "install PostgreSQL (apt-get install postgresql) or set STOWAGE_TEST_POSTGRES_URL"


@dataclass(frozen=True)
class PostgresServer:
    """A running server and a superuser to administer it."""

    host: str
    port: int
    user: str
    password: str

    def dsn(
        self, dbname: str = "postgres", user: str | None = None, password: str | None = None
    ) -> str:
        u = user or self.user
        pw = password if password is not None else self.password
        auth = f"{u}:{pw}@" if pw else f"{u}@"
        return f"postgresql://{auth}{self.host}:{self.port}/{dbname}"

    def sqlalchemy_url(self, dbname: str) -> str:
        return self.dsn(dbname).replace("postgresql://", "postgresql+psycopg://", 1)

    def create_database(self, prefix: str = "t") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run_as(user: str | None, args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    if user is not None:
        args = ["runuser", "-u", user, "--", *args]
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw)  # type: ignore[call-overload, no-any-return]


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Start a fresh cluster (or use the one named by the environment)."""
    url = os.environ.get("STOWAGE_TEST_POSTGRES_URL")
    if url:
        info = psycopg.conninfo.conninfo_to_dict(url)
        yield PostgresServer(
            host=str(info.get("host", "127.0.0.1")),
            port=int(info.get("port", 5432)),
            user=str(info.get("user", "postgres")),
            password=str(info.get("password", "")),
        )
        return

    initdb = find_program("initdb", PG_DIRS)
    pg_ctl = find_program("pg_ctl", PG_DIRS)
    if initdb is None or pg_ctl is None:
        missing("PostgreSQL (initdb/pg_ctl)", HOW)
        raise AssertionError("unreachable")

    # initdb refuses to run as root; run the cluster as the postgres user then.
    run_user = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            missing("a non-root 'postgres' user to run PostgreSQL", HOW)
        run_user = "postgres"

    base = Path(tempfile.mkdtemp(prefix="stowage-pg-"))
    data = base / "data"
    sock = base / "sock"
    sock.mkdir()
    if run_user:
        shutil.chown(base, run_user)
        shutil.chown(sock, run_user)
    password = uuid.uuid4().hex
    pwfile = base / "pw"
    pwfile.write_text(password)
    if run_user:
        shutil.chown(pwfile, run_user)
    port = free_port()
    _run_as(
        run_user,
        [
            str(initdb),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "scram-sha-256",
            f"--pwfile={pwfile}",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        ],
    )
    opts = (
        f"-h 127.0.0.1 -p {port} -k {sock} -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off -c max_connections=300 -c shared_buffers=128MB"
    )
    _run_as(
        run_user,
        [
            str(pg_ctl),
            "-D",
            str(data),
            "-o",
            opts,
            "-l",
            str(base / "log"),
            "-w",
            "-t",
            "60",
            "start",
        ],
    )
    server = PostgresServer("127.0.0.1", port, "postgres", password)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(server.dsn(), connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield server
    finally:
        subprocess.run(
            (["runuser", "-u", run_user, "--"] if run_user else [])
            + [str(pg_ctl), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(base, ignore_errors=True)
