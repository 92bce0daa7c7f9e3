"""The worker's long write statements are converted for PostgreSQL once, not on every call.

psycopg turns a statement's ``%(name)s`` placeholders into ``$1``… on each execute
and remembers the result only for statements under its limit (4 KiB). A Put is one
statement of 6 to 11 KiB (``objects._pg_writes``, ``spaces._pg_space_writes``):
the worker's engine raises that limit, and a second execute of the same long
statement finds its conversion remembered.
"""

from __future__ import annotations

import asyncio

from psycopg import _queries
from sqlalchemy import text

from stowage_testing.postgres import PostgresServer
from tenant_worker.objects import _pg_writes
from tenant_worker.spaces import _pg_space_writes
from tenant_worker.storage._db import CACHED_STATEMENT_BYTES, create_engine


def test_every_write_statement_fits_the_remembered_length() -> None:
    for statement in (_pg_writes.PUT, _pg_writes.DELETE, _pg_space_writes.PUT,
                      _pg_space_writes.DELETE):  # fmt: skip
        assert len(statement.text.encode()) < CACHED_STATEMENT_BYTES


def test_a_long_statement_is_converted_once(postgres: PostgresServer) -> None:
    # As long as a Put, with a parameter: the text psycopg would have converted each time.
    padding = "-- " + "x" * 8000 + "\n"
    statement = text(f"SELECT CAST(:n AS integer) + 1 AS m\n{padding}")

    async def twice() -> list[int]:
        engine = create_engine(postgres.sqlalchemy_url("postgres"))
        try:
            async with engine.connect() as conn:
                first = (await conn.execute(statement, {"n": 1})).scalar_one()
                before = _queries._query2pg.cache_info().hits
                second = (await conn.execute(statement, {"n": 2})).scalar_one()
                after = _queries._query2pg.cache_info().hits
        finally:
            await engine.dispose()
        return [first, second, after - before]

    assert asyncio.run(twice()) == [2, 3, 1]
