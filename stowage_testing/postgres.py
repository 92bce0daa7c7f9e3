"""A throwaway PostgreSQL cluster started with ``initdb``/``pg_ctl`` on loopback.

Set ``STOWAGE_TEST_POSTGRES_URL`` (``postgresql://user:pw@host:port/db`` of a
superuser) to use an existing server instead. Only a cluster the harness
started itself can be stopped and started again (``PostgresServer.restart``);
``running_own_postgres`` always starts one, for tests that need that.
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
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from stowage_testing.tools import find_program, free_port, missing

PG_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
HOW = "install PostgreSQL (apt-get install postgresql) or set STOWAGE_TEST_POSTGRES_URL"


@dataclass(frozen=True)
class _Cluster:
    """What ``pg_ctl`` needs to stop and start the same cluster on the same port."""

    pg_ctl: Path
    data: Path
    options: str
    log: Path
    run_user: str | None


@dataclass(frozen=True)
class PostgresServer:
    """A running server and a superuser to administer it."""

    host: str
    port: int
    user: str
    password: str
    #: Set when the harness started the cluster: then it can be stopped and started.
    cluster: _Cluster | None = field(default=None, compare=False, repr=False)

    def _own(self) -> _Cluster:
        if self.cluster is None:
            raise RuntimeError(
                f"the PostgreSQL server at {self.host}:{self.port} was not started by the tests "
                "(STOWAGE_TEST_POSTGRES_URL), so they cannot stop or start it; "
                "use running_own_postgres() for a cluster that can be restarted"
            )
        return self.cluster

    def stop(self, mode: str = "fast") -> None:
        """Stop the cluster: ``fast`` rolls back open transactions and disconnects
        clients cleanly; ``immediate`` is a crash (this cluster runs with
        ``fsync=off`` and ``synchronous_commit=off``, so a crash may lose commits)."""
        c = self._own()
        _run_as(c.run_user, [str(c.pg_ctl), "-D", str(c.data), "-m", mode, "-w", "stop"])

    def start(self, timeout: float = 30.0) -> None:
        """Start the stopped cluster again (same data, same port) and wait until it answers."""
        c = self._own()
        _run_as(
            c.run_user,
            [str(c.pg_ctl), "-D", str(c.data), "-o", c.options, "-l", str(c.log), "-w",
             "-t", str(int(timeout)), "start"],
        )  # fmt: skip
        _wait_accepting(self, timeout)

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

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


def _wait_accepting(server: PostgresServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(server.dsn(), connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


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
    with running_own_postgres() as server:
        yield server


# Over 60 lines on purpose: initdb, configuration, start and teardown of one throwaway cluster, in
# the order they run.
@contextmanager
def running_own_postgres(options: str = "", host: str = "127.0.0.1") -> Iterator[PostgresServer]:
    """Start a fresh cluster whatever the environment says: one the test may stop and start.

    ``options`` are more server options (``-c ssl=on -c ssl_cert_file=...``); files they
    name must be readable by the user the server runs as (``postgres`` under root).
    ``host`` is where clients reach it: besides loopback, the server listens there too and
    admits password (SCRAM) logins from any address (e.g. a test cluster's pods).
    """
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
    if host != "127.0.0.1":
        with (data / "pg_hba.conf").open("a") as hba:
            hba.write("host all all 0.0.0.0/0 scram-sha-256\n")
    listen = "127.0.0.1" if host == "127.0.0.1" else f"127.0.0.1,{host}"
    opts = (
        f"-h {listen} -p {port} -k {sock} -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off -c max_connections=300 -c shared_buffers=128MB"
        + (f" {options}" if options else "")
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
    cluster = _Cluster(pg_ctl, data, opts, base / "log", run_user)
    server = PostgresServer(host, port, "postgres", password, cluster)
    try:
        _wait_accepting(server, 30)
        yield server
    finally:
        subprocess.run(
            (["runuser", "-u", run_user, "--"] if run_user else [])
            + [str(pg_ctl), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(base, ignore_errors=True)
