"""Plain values: the manifest, the retention policy, where a database is. No I/O here."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from tenant_backup._errors import UsageError

#: The manifest format this code writes and reads.
FORMAT = "stowage-backup/1"


@dataclass(frozen=True)
class Erasure:
    """A ``user.erase`` in the audit trail: the pseudonymous internal user id, and when.

    ``space_erasure`` is what the erasure did to what the user wrote in shared
    spaces (``delete`` or ``pseudonymise``, the tenant's ``spaces.erasure`` at
    the time), as its audit row records it; None when it records none (erased
    before spaces existed, or a manifest written before this field).
    """

    user_id: str
    at: datetime
    space_erasure: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"user_id": self.user_id, "at": self.at.isoformat()}
        if self.space_erasure is not None:
            body["space_erasure"] = self.space_erasure
        return body

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Erasure:
        policy = d.get("space_erasure")
        return cls(
            str(d["user_id"]),
            datetime.fromisoformat(d["at"]),
            None if policy is None else str(policy),
        )


@dataclass(frozen=True)
class FileCheck:
    """Every stored file's bytes read back: how many files and bytes, and what was wrong.

    ``problems`` names a file whose chunks, in order, do not hash to its recorded
    sha256 or add up to its size (at most a few, with ``bad_files`` the count),
    and ``stray_chunks`` counts chunks that no file's current content holds:
    bytes kept that nothing points to (an erasure or purge that left them).
    ``in_bucket`` counts the files read from the Region's object store, and
    ``gone_since`` those whose object is no longer there because the live
    database no longer holds that version either (deleted or replaced since the
    backup: the database backup does not carry objects).
    """

    files: int
    bytes: int
    bad_files: int = 0
    problems: tuple[str, ...] = ()
    stray_chunks: int = 0
    in_bucket: int = 0
    gone_since: int = 0

    @property
    def ok(self) -> bool:
        return self.bad_files == 0 and self.stray_chunks == 0


@dataclass(frozen=True)
class Manifest:
    """What a backup holds, read in the same snapshot as the dump.

    ``tables`` maps each table of the ``public`` schema to its row count;
    ``erasures`` lists the erasures recorded in the audit trail up to the
    snapshot, so a restore of an older backup can replay them.
    """

    id: str
    time: datetime
    database: str
    file: str
    size: int
    sha256: str
    revision: str | None
    tables: Mapping[str, int]
    erasures: Sequence[Erasure] = ()
    pg_dump_version: str = ""
    duration_seconds: float = 0.0

    def to_json(self) -> str:
        body: dict[str, Any] = {
            "format": FORMAT,
            "id": self.id,
            "time": self.time.isoformat(),
            "database": self.database,
            "file": self.file,
            "size": self.size,
            "sha256": self.sha256,
            "revision": self.revision,
            "tables": dict(sorted(self.tables.items())),
            "erasures": [e.to_json() for e in self.erasures],
            "pg_dump_version": self.pg_dump_version,
            "duration_seconds": round(self.duration_seconds, 3),
        }
        return json.dumps(body, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """Parse a manifest; ValueError when it is not one this code wrote."""
        try:
            d = json.loads(text)
            if d.get("format") != FORMAT:
                raise ValueError(f"format {d.get('format')!r}, expected {FORMAT!r}")
            return cls(
                id=str(d["id"]),
                time=datetime.fromisoformat(d["time"]),
                database=str(d["database"]),
                file=str(d["file"]),
                size=int(d["size"]),
                sha256=str(d["sha256"]),
                revision=None if d["revision"] is None else str(d["revision"]),
                tables={str(k): int(v) for k, v in d["tables"].items()},
                erasures=tuple(Erasure.from_json(e) for e in d.get("erasures", [])),
                pg_dump_version=str(d.get("pg_dump_version", "")),
                duration_seconds=float(d.get("duration_seconds", 0.0)),
            )
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as e:
            raise ValueError(f"not a backup manifest: {e}") from e


@dataclass(frozen=True)
class Retention:
    """Which backups to keep: the newest ``keep_count`` and/or those younger than ``keep_days``.

    A backup is kept when any rule keeps it (none given: all are kept), and the
    newest complete backup is kept whatever the rules say.
    """

    keep_count: int | None = None
    keep_days: float | None = None

    def __post_init__(self) -> None:
        if self.keep_count is not None and self.keep_count < 1:
            raise UsageError("--keep-count: must be at least 1")
        if self.keep_days is not None and self.keep_days <= 0:
            raise UsageError("--keep-days: must be a positive number of days")

    def expired(
        self, newest_first: Sequence[Manifest], now: datetime, newest_good: str | None
    ) -> list[Manifest]:
        """The backups of ``newest_first`` that the policy lets go; never ``newest_good``."""
        if self.keep_count is None and self.keep_days is None:
            return []
        gone = []
        for index, manifest in enumerate(newest_first):
            if manifest.id == newest_good:
                continue
            by_count = self.keep_count is not None and index < self.keep_count
            by_age = self.keep_days is not None and now - manifest.time < timedelta(
                days=self.keep_days
            )
            if not (by_count or by_age):
                gone.append(manifest)
        return gone


@dataclass(frozen=True)
class Database:
    """Where a database is and how to log in: the libpq parameters of a database URL."""

    host: str
    port: int
    dbname: str
    user: str
    password: str = field(repr=False, default="")
    sslmode: str = ""
    #: libpq's sslrootcert: the file of the CA that signed the server (a Region's CA).
    sslrootcert: str = ""

    @classmethod
    def from_url(cls, url: str) -> Database:
        """From the tenant Secret's ``url`` (``postgresql+psycopg://user:pw@host:port/db``)."""
        try:
            u = make_url(url)
        except ArgumentError as e:
            raise UsageError("the database URL is not a URL (--database-url)") from e
        if u.get_backend_name() != "postgresql":
            raise UsageError(
                f"backups need a PostgreSQL database, not {u.get_backend_name()!r} (--database-url)"
            )
        if not u.database or not u.username:
            raise UsageError("the database URL must name a user and a database (--database-url)")
        sslmode = u.query.get("sslmode", "")
        sslrootcert = u.query.get("sslrootcert", "")
        return cls(
            host=u.host or "localhost",
            port=u.port or 5432,
            dbname=u.database,
            user=u.username,
            password=u.password or "",
            sslmode=sslmode if isinstance(sslmode, str) else sslmode[0],
            sslrootcert=sslrootcert if isinstance(sslrootcert, str) else sslrootcert[0],
        )

    def other(self, dbname: str) -> Database:
        """The same server and login, another database."""
        return dataclasses.replace(self, dbname=dbname)

    def conninfo(self) -> dict[str, Any]:
        """Keyword arguments for ``psycopg.connect``."""
        info: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "dbname": self.dbname,
            "user": self.user,
            "password": self.password,
        }
        if self.sslmode:
            info["sslmode"] = self.sslmode
        if self.sslrootcert:
            info["sslrootcert"] = self.sslrootcert
        return info

    def environment(self) -> dict[str, str]:
        """The libpq variables for pg_dump/pg_restore/psql: no password on a command line."""
        env = {
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGDATABASE": self.dbname,
            "PGUSER": self.user,
            "PGPASSWORD": self.password,
        }
        if self.sslmode:
            env["PGSSLMODE"] = self.sslmode
        if self.sslrootcert:
            env["PGSSLROOTCERT"] = self.sslrootcert
        return env

    def sqlalchemy_url(self) -> str:
        """The URL the worker's code takes (for replaying erasures)."""
        from sqlalchemy.engine import URL

        query = {"sslmode": self.sslmode} if self.sslmode else {}
        if self.sslrootcert:
            query["sslrootcert"] = self.sslrootcert
        return URL.create(
            "postgresql+psycopg",
            username=self.user,
            password=self.password,
            host=self.host,
            port=self.port,
            database=self.dbname,
            query=query,
        ).render_as_string(hide_password=False)

    def describe(self) -> str:
        return f"{self.dbname} on {self.host}:{self.port} as {self.user}"
