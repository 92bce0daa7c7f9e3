"""The worker's hot statements run prepared on the pooled driver connection.

A Put, a Delete and a Get (personal and in a space) are fixed statements in
PostgreSQL's own form (``$1``…): psycopg sends their text as it is, prepares
each once per connection, and their rows become the named tuples the callers
read. Driver errors come out as SQLAlchemy's, so the worker translates them as
it does any other.
"""

from __future__ import annotations

import asyncio
from typing import Any, NamedTuple

import pytest
from sqlalchemy.exc import IntegrityError

from stowage_testing.postgres import PostgresServer
from tenant_worker import migrate
from tenant_worker._errors import WriteRace
from tenant_worker.objects import _objects, _pg_writes
from tenant_worker.spaces import _pg_space_writes, _space_objects
from tenant_worker.storage._db import (
    Prepared,
    autocommit,
    create_engine,
    one_row,
    translated_errors,
)

HOT: dict[str, Prepared[Any]] = {
    "put": _pg_writes.PUT,
    "delete": _pg_writes.DELETE,
    "get": _objects._PG_GET,
    "space put": _pg_space_writes.PUT,
    "space delete": _pg_space_writes.DELETE,
    "space get": _space_objects._PG_GET,
    "space get with names": _space_objects._PG_GET_NAMED,
}


class _Sum(NamedTuple):
    m: int


_ADD = Prepared("SELECT CAST($1 AS integer) + CAST($2 AS integer) AS m", ("a", "b"), _Sum._make)
_TAKE = Prepared(
    "INSERT INTO taken (k) VALUES (CAST($1 AS integer)) RETURNING k AS m", ("k",), _Sum._make
)


def test_each_hot_statement_names_its_columns_in_order(postgres: PostgresServer) -> None:
    db = postgres.create_database("statements")
    migrate(postgres.sqlalchemy_url(db))

    async def described() -> dict[str, tuple[list[str], list[str], int]]:
        engine = create_engine(postgres.sqlalchemy_url(db))
        found = {}
        try:
            async with engine.connect() as conn:
                raw = await conn.get_raw_connection()
                pgconn = raw.driver_connection.pgconn  # type: ignore[union-attr]
                for name, statement in HOT.items():
                    handle = name.replace(" ", "_").encode()
                    pgconn.prepare(handle, statement.sql.encode())
                    d = pgconn.describe_prepared(handle)
                    columns = [(d.fname(i) or b"").decode() for i in range(d.nfields)]
                    fields = list(statement.row(range(len(columns)))._fields)  # type: ignore[attr-defined]
                    found[name] = (columns, fields, d.nparams - len(statement.params))
        finally:
            await engine.dispose()
        return found

    for name, (columns, fields, extra_params) in asyncio.run(described()).items():
        assert columns == fields, name
        assert extra_params == 0, name


def test_a_statement_is_prepared_once_per_connection(postgres: PostgresServer) -> None:
    async def run() -> tuple[list[int], int]:
        engine = create_engine(postgres.sqlalchemy_url("postgres"))
        try:
            async with autocommit(engine).connect() as conn:
                sums = []
                for a in (1, 2, 3):
                    row = await one_row(conn, _ADD, {"a": a, "b": 10})
                    assert row is not None
                    sums.append(row.m)
                raw = await conn.get_raw_connection()
                driver = raw.driver_connection
                assert driver is not None
                cur = await driver.execute(
                    "SELECT count(*) FROM pg_prepared_statements WHERE statement = %s",
                    (_ADD.sql,),
                )
                (prepared,) = await cur.fetchone() or (0,)
        finally:
            await engine.dispose()
        return sums, prepared

    assert asyncio.run(run()) == ([11, 12, 13], 1)


def test_a_driver_error_comes_out_as_sqlalchemys(postgres: PostgresServer) -> None:
    db = postgres.create_database("statements")

    async def twice() -> None:
        engine = create_engine(postgres.sqlalchemy_url(db))
        try:
            async with engine.connect() as conn:
                await conn.exec_driver_sql("CREATE TABLE taken (k integer PRIMARY KEY)")
                await conn.commit()
            async with autocommit(engine).connect() as conn:
                await one_row(conn, _TAKE, {"k": 1})
                with pytest.raises(IntegrityError) as raised:
                    await one_row(conn, _TAKE, {"k": 1})
                assert raised.value.hide_parameters
                with pytest.raises(WriteRace):
                    async with translated_errors():
                        await one_row(conn, _TAKE, {"k": 1})
            async with engine.connect() as conn:
                with pytest.raises(RuntimeError, match="autocommit"):
                    await one_row(conn, _TAKE, {"k": 2})
        finally:
            await engine.dispose()

    asyncio.run(twice())
