"""The database adapter: engines, sessions and translation of driver errors."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Generic, TypeVar

import psycopg
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from stowage.tracing.sql import statement_span
from tenant_worker._errors import StorageUnavailable, UnknownUser, WriteRace

#: SQLSTATEs of a transaction that lost a race and may simply run again:
#: unique_violation, serialization_failure, deadlock_detected.
_RACES = frozenset({"23505", "40001", "40P01"})


def async_url(url: str) -> str:
    """The async driver form of a database URL."""
    u = make_url(url)
    if u.drivername in {"postgresql", "postgres", "postgresql+psycopg2"}:
        u = u.set(drivername="postgresql+psycopg")
    elif u.drivername in {"sqlite", "sqlite+pysqlite"}:
        u = u.set(drivername="sqlite+aiosqlite")
    return u.render_as_string(hide_password=False)


def sync_url(url: str) -> str:
    """The sync driver form (for migrations)."""
    u = make_url(url)
    if u.drivername == "sqlite+aiosqlite":
        u = u.set(drivername="sqlite")
    elif u.drivername in {"postgresql", "postgres"}:
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    # Deleted content is overwritten, so an erased user's data does not linger in free pages.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def create_engine(url: str, pool_size: int = 30, max_overflow: int = 0) -> AsyncEngine:
    url = async_url(url)
    if is_sqlite(url):
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _connect(dbapi_connection: Any, record: Any) -> None:
            # Let SQLAlchemy, not the driver, decide when transactions begin,
            # and take the write lock up front so concurrent writers queue
            # instead of failing on a lock upgrade.
            dbapi_connection.isolation_level = None
            sqlite_pragmas(dbapi_connection, record)

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=10,
    )


RowT = TypeVar("RowT")


@dataclass(frozen=True)
class Prepared(Generic[RowT]):
    """A hot PostgreSQL statement, run by :func:`one_row` on the pooled driver connection.

    ``sql`` is in PostgreSQL's own form: its parameters are ``$1``, ``$2``… in the
    order of ``params``, so psycopg sends the text as it is (no placeholders to
    convert). It is prepared once per connection and then only executed; its
    row, a tuple, becomes a ``RowT`` by ``row`` (a ``NamedTuple``'s ``_make``),
    whose fields name the statement's result columns in order.
    """

    sql: str
    params: tuple[str, ...]
    row: Callable[[Iterable[Any]], RowT]
    _args: Callable[[Mapping[str, Any]], Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        get = itemgetter(*self.params)
        if len(self.params) == 1:
            object.__setattr__(self, "_args", lambda values: (get(values),))
        else:
            object.__setattr__(self, "_args", get)

    def args(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        """The statement's positional parameters, taken from ``values`` by name."""
        args: tuple[Any, ...] = self._args(values)
        return args


#: The parameters of a Put that carry the object's value and the limits it must fit, the
#: same in the personal and the space Put (``objects._pg_writes``, ``spaces._pg_space_writes``).
PUT_VALUE_PARAMS = (
    ("data", "jsonb"),
    ("schema_version", "integer"),
    ("size", "bigint"),
    ("expires_at", "timestamptz"),
    ("max_objects", "bigint"),
    ("max_bytes", "bigint"),
    ("user_max_objects", "bigint"),
    ("user_max_bytes", "bigint"),
    ("record", "jsonb"),
)


def placeholders(params: Iterable[tuple[str, str]]) -> tuple[tuple[str, ...], str]:
    """Names of ``(name, type)`` parameters and the statement's ``p`` CTE: one row casting
    each to its type, ``CAST($1 AS type) AS name, …`` (each parameter is cast once, where
    it enters)."""
    pairs = list(params)
    columns = ",\n           ".join(
        f"CAST(${i} AS {sql_type}) AS {name}" for i, (name, sql_type) in enumerate(pairs, 1)
    )
    return tuple(name for name, _ in pairs), f"\np AS (\n    SELECT {columns}\n)"


async def one_row(
    conn: AsyncConnection, statement: Prepared[RowT], values: Mapping[str, Any]
) -> RowT | None:
    """Run ``statement`` on ``conn``'s own psycopg connection, prepared; its first row.

    ``conn`` is in autocommit (:func:`autocommit`, ``Store.statements``): the
    statement commits as it returns, and no transaction of SQLAlchemy's is
    left open behind its back. Errors come out as SQLAlchemy's
    (``IntegrityError``, ``OperationalError``…, the driver's error chained), so
    :func:`translated_errors` reads them as it reads any other; a connection
    the error broke is invalidated, so the pool drops it.
    """
    driver = await _driver_connection(conn)
    if not driver.autocommit:
        raise RuntimeError("a prepared statement runs on a connection in autocommit")
    args = statement.args(values)
    try:
        with statement_span(statement.sql, "postgresql"):
            cursor = psycopg.AsyncRawCursor(driver)
            await cursor.execute(statement.sql, args, prepare=True)
            row = await cursor.fetchone()
    except psycopg.Error as e:
        broken = driver.broken or driver.closed
        if broken:
            await conn.invalidate()
        raise DBAPIError.instance(
            statement.sql,
            None,
            e,
            psycopg.Error,
            hide_parameters=True,
            connection_invalidated=broken,
            dialect=conn.dialect,
        ) from e
    return None if row is None else statement.row(row)


async def _driver_connection(conn: AsyncConnection) -> psycopg.AsyncConnection[Any]:
    """The psycopg connection under ``conn`` (checked out, so it stays ``conn``'s)."""
    sync = conn.sync_connection
    if sync is not None and not sync.invalidated:
        proxied = sync.connection
    else:
        proxied = await conn.get_raw_connection()
    driver = proxied.driver_connection
    if not isinstance(driver, psycopg.AsyncConnection):
        raise TypeError(f"not a psycopg connection: {type(driver).__name__}")
    return driver


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def read_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for single-statement reads: on PostgreSQL in autocommit, which
    saves the BEGIN and COMMIT round trips; the pool restores the isolation
    level when the connection is returned. SQLite keeps its transactions."""
    return session_factory(autocommit(engine))


def autocommit(engine: AsyncEngine) -> AsyncEngine:
    """The engine for single statements: on PostgreSQL each one commits on its own,
    which saves the BEGIN and COMMIT round trips (the pool restores the
    isolation level when the connection is returned). SQLite keeps its transactions."""
    if engine.dialect.name == "sqlite":
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def is_foreign_key_violation(error: IntegrityError) -> bool:
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate is not None:
        return bool(sqlstate == "23503")
    return "FOREIGN KEY" in str(error.orig).upper()


def _is_race(error: DBAPIError) -> bool:
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate in _RACES
    return isinstance(error, IntegrityError) and "UNIQUE" in str(error.orig).upper()


@asynccontextmanager
async def translated_errors() -> AsyncIterator[None]:
    """Turn driver failures into the worker's outcomes.

    A foreign key naming a missing user is UnknownUser; a lost race (a unique
    key taken first, a deadlock, a serialization failure) is WriteRace, which
    the write path retries; connection-level failures are StorageUnavailable.
    """
    try:
        yield
    except IntegrityError as e:
        if is_foreign_key_violation(e):
            raise UnknownUser("unknown user id; resolve the identity again") from e
        if _is_race(e):
            raise WriteRace(f"a concurrent write won ({type(e.orig).__name__})") from e
        raise
    except (OperationalError, PoolTimeout, OSError) as e:
        if isinstance(e, DBAPIError) and _is_race(e):
            raise WriteRace(f"a concurrent write won ({type(e.orig).__name__})") from e
        raise StorageUnavailable(f"database unavailable: {type(e).__name__}") from e
    except DBAPIError as e:
        if e.connection_invalidated:
            raise StorageUnavailable("database connection lost") from e
        if _is_race(e):
            raise WriteRace(f"a concurrent write won ({type(e.orig).__name__})") from e
        raise


async def checkpoint_after_erasure(bind: AsyncEngine | AsyncConnection | None) -> None:
    """On SQLite, copy the WAL into the database and truncate it, so erased pages leave it.

    Runs on a connection of its own, outside any transaction (a checkpoint
    cannot finish inside one). PostgreSQL reclaims deleted rows by vacuum;
    there is nothing to do here.
    """
    engine = bind.engine if isinstance(bind, AsyncConnection) else bind
    if engine is None or engine.dialect.name != "sqlite" or not engine.url.database:
        return
    path = engine.url.database

    def checkpoint() -> None:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()

    await asyncio.to_thread(checkpoint)
