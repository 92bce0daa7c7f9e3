"""A tenant database as the operator makes it, a real worker on it, and the CLI.

The tenant's role owns its database and a scratch database for drills and has
no CREATEDB, as in a region; the backup commands run as ``python -m stowage
backup`` with only that role's URL, and pg_dump/pg_restore/psql of the
installed PostgreSQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from psycopg import sql

from stowage.v1 import worker_pb2 as pb
from stowage.v1 import worker_pb2_grpc
from stowage_testing.postgres import HOW, PG_DIRS, PostgresServer
from stowage_testing.tools import find_program, missing


@dataclass(frozen=True)
class TenantDatabase:
    """One tenant's database and role on the test server."""

    server: PostgresServer
    name: str
    role: str
    password: str

    @property
    def url(self) -> str:
        return (
            f"postgresql+psycopg://{self.role}:{self.password}@{self.server.host}:"
            f"{self.server.port}/{self.name}?sslmode=disable"
        )

    @property
    def scratch(self) -> str:
        return f"{self.name}_drill"

    def admin(self, dbname: str | None = None) -> psycopg.Connection[tuple[Any, ...]]:
        """A superuser connection to inspect (never used by the commands under test)."""
        return psycopg.connect(self.server.dsn(dbname or self.name), autocommit=True)

    def create_database(self, name: str) -> str:
        """Another empty database the tenant's role owns (a target for a restore)."""
        with self.admin("postgres") as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(self.role)
                )
            )
        return name

    def url_of(self, dbname: str) -> str:
        return self.url.replace(f"/{self.name}?", f"/{dbname}?")


@pytest.fixture
def tenant_db(postgres: PostgresServer) -> Iterator[TenantDatabase]:
    """Role and database as the operator provisions them, migrated, plus the scratch database."""
    from tenant_worker import migrate

    suffix = uuid.uuid4().hex[:10]
    db = TenantDatabase(postgres, f"tenant_{suffix}", f"tenant_{suffix}", uuid.uuid4().hex)
    with db.admin("postgres") as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
                sql.Identifier(db.role), sql.Literal(db.password)
            )
        )
        for name in (db.name, db.scratch):
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(db.role)
                )
            )
            conn.execute(
                sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(name))
            )
    migrate(db.url)
    yield db
    with db.admin("postgres") as conn:
        names = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{db.name}%",)
        ).fetchall()
        for (name,) in names:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(db.role)))


@pytest.fixture(scope="session")
def pg_bin() -> Path:
    found = find_program("pg_dump", PG_DIRS)
    if found is None:
        missing("pg_dump/pg_restore/psql", HOW)
        raise AssertionError("unreachable")
    return found.parent


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str
    result: dict[str, Any] | None

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


@dataclass(frozen=True)
class BackupCli:
    """``stowage backup …`` as an operator or a CronJob runs it."""

    tenant: TenantDatabase
    directory: Path
    pg_bin: Path

    def __call__(self, *args: str, url: str | None = None, timeout: float = 90) -> Ran:
        result_file = self.directory.parent / f"result-{uuid.uuid4().hex[:8]}.json"
        env = {
            **os.environ,
            "STOWAGE_DATABASE_URL": url or self.tenant.url,
            "STOWAGE_BACKUP_DIR": str(self.directory),
            "STOWAGE_PG_BIN": str(self.pg_bin),
            "STOWAGE_BACKUP_RESULT_FILE": str(result_file),
        }
        done = subprocess.run(
            [sys.executable, "-m", "stowage", "backup", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        result = json.loads(result_file.read_text()) if result_file.exists() else None
        return Ran(done.returncode, done.stdout, done.stderr, result)

    def manifests(self) -> list[dict[str, Any]]:
        """The manifests in the directory, newest first."""
        found = [json.loads(p.read_text()) for p in self.directory.glob("*.json")]
        return sorted(found, key=lambda m: m["time"], reverse=True)


@pytest.fixture
def backup(tenant_db: TenantDatabase, tmp_path: Path, pg_bin: Path) -> BackupCli:
    return BackupCli(tenant_db, tmp_path / "backups", pg_bin)


class User:
    """One user of a real worker, over its gRPC API."""

    def __init__(self, channel: grpc.Channel, name: str) -> None:
        self.stub = worker_pb2_grpc.TenantWorkerStub(channel)
        reply = self.stub.ResolveUser(
            pb.ResolveUserRequest(issuer="https://issuer.test/", subject=name),
            metadata=[("x-stowage-tenant", "acme")],
            timeout=15,
        )
        self.id = reply.user_id

    def metadata(self) -> list[tuple[str, str]]:
        return [("x-stowage-tenant", "acme"), ("x-stowage-user-id", self.id)]

    def put(self, collection: str, object_id: str, data: dict[str, Any]) -> int:
        reply = self.stub.PutObject(
            pb.PutObjectRequest(
                collection=collection, id=object_id, data_json=json.dumps(data).encode()
            ),
            metadata=self.metadata(),
            timeout=15,
        )
        return int(reply.object.version)

    def erase(self) -> None:
        self.stub.EraseUserData(
            pb.EraseUserDataRequest(confirm=True), metadata=self.metadata(), timeout=15
        )


def rows(
    conn: psycopg.Connection[tuple[Any, ...]], query: str, *params: Any
) -> list[tuple[Any, ...]]:
    return list(conn.execute(query, params).fetchall())
