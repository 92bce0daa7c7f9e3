"""Adapter: the region's PostgreSQL, as its admin. psycopg errors become DatabaseError.

Passwords are sent as SCRAM verifiers computed here, so the plain password
reaches neither the server's statement log nor ours.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from stowage_operator._errors import DatabaseError
from stowage_operator._types import AdminCredentials

log = logging.getLogger(__name__)

#: How the operator's admin sessions show in ``pg_stat_activity``.
APPLICATION_NAME = "stowage-operator"


#: The role that owns the objects of every template database until a clone is handed to its
#: tenant. It cannot log in; the admin acts as it (``SET ROLE``) while migrating a template.
TEMPLATE_ROLE = "stowage-template"


@dataclass(frozen=True)
class Provisioned:
    """What ensure_database found missing and created."""

    created_role: bool
    created_database: bool
    #: The database was created as a clone of a migrated template (no migrations needed).
    cloned: bool = False
    #: The spare database (a clone made ahead of demand) that became this one, if any.
    spare: str | None = None


@dataclass(frozen=True)
class Catalog:
    """The tenants' databases and login roles on a region's server, as one read found them."""

    #: Each tenant database: its owner, and whether PUBLIC holds any privilege on it.
    databases: Mapping[str, tuple[str, bool]]
    #: The tenant roles that may log in.
    logins: frozenset[str]

    def provisioned(self, database: str, role: str) -> bool:
        """Whether ``ensure_database`` would find nothing to create or grant for the pair."""
        return self.databases.get(database) == (role, False) and role in self.logins

    def exists(self, database: str) -> bool:
        return database in self.databases


@asynccontextmanager
async def _admin(
    creds: AdminCredentials, connect_timeout: float, dbname: str | None = None
) -> AsyncIterator[psycopg.AsyncConnection[tuple[object, ...]]]:
    """An admin connection, opened only while one of the region's ``slots`` is free."""
    async with (
        creds.slots or contextlib.nullcontext(),
        _connect(creds, connect_timeout, dbname) as conn,
    ):
        yield conn


def ca_file(pem: str) -> Path:
    """A Region's CA as a file, for libpq's sslrootcert (which reads only files).

    Written once per certificate under the temporary directory (the operator's
    pod mounts an emptyDir at /tmp), named by its digest.
    """
    directory = Path(tempfile.gettempdir()) / "stowage-postgres-ca"
    path = directory / f"{hashlib.sha256(pem.encode()).hexdigest()[:32]}.crt"
    if not path.is_file():
        directory.mkdir(mode=0o700, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(pem)
        partial.replace(path)
    return path


def _trust(creds: AdminCredentials) -> dict[str, Any]:
    """libpq's sslrootcert for a Region with a CA; nothing (libpq's defaults) without."""
    return {"sslrootcert": str(ca_file(creds.ca_cert))} if creds.ca_cert else {}


@asynccontextmanager
async def _connect(
    creds: AdminCredentials, connect_timeout: float, dbname: str | None
) -> AsyncIterator[psycopg.AsyncConnection[tuple[object, ...]]]:
    try:
        conn = await psycopg.AsyncConnection.connect(
            host=creds.host,
            port=creds.port,
            dbname=dbname or creds.database,
            user=creds.user,
            password=creds.password,
            sslmode=creds.ssl_mode,
            **_trust(creds),
            connect_timeout=max(1, int(connect_timeout)),
            autocommit=True,
            application_name=APPLICATION_NAME,
        )
    except psycopg.Error as e:
        raise DatabaseError(
            f"cannot connect to PostgreSQL at {creds.host}:{creds.port} as {creds.user}: "
            f"{type(e).__name__}",
            reason="DatabaseUnreachable",
        ) from e
    try:
        async with conn:
            yield conn
    except psycopg.Error as e:
        raise DatabaseError(
            f"PostgreSQL at {creds.host}:{creds.port} refused: {e.sqlstate or type(e).__name__}"
        ) from e


async def check(creds: AdminCredentials, connect_timeout: float) -> None:
    """Connect and run a trivial query; raise DatabaseError if that fails."""
    async with _admin(creds, connect_timeout) as conn:
        await conn.execute("SELECT 1")


async def catalog(creds: AdminCredentials, connect_timeout: float, prefix: str) -> Catalog:
    """The databases and login roles named ``prefix…`` (the tenants'), in one connection.

    A database PUBLIC holds no privilege on has a non-null ACL without a PUBLIC
    (grantee 0) entry; a null ACL means the defaults, which give PUBLIC CONNECT.
    """
    async with _admin(creds, connect_timeout) as conn:
        cur = await conn.execute(
            "SELECT d.datname, pg_get_userbyid(d.datdba), d.datacl IS NULL OR EXISTS "
            "(SELECT 1 FROM aclexplode(d.datacl) a WHERE a.grantee = 0) "
            "FROM pg_database d WHERE starts_with(d.datname, %s)",
            (prefix,),
        )
        databases = {str(name): (str(owner), bool(public)) for name, owner, public in
                     await cur.fetchall()}  # fmt: skip
        cur = await conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolcanlogin AND starts_with(rolname, %s)",
            (prefix,),
        )
        logins = frozenset(str(row[0]) for row in await cur.fetchall())
    return Catalog(databases, logins)


async def _exists(conn: psycopg.AsyncConnection[tuple[object, ...]], query: str, name: str) -> bool:
    cur = await conn.execute(query, (name,))
    return await cur.fetchone() is not None


async def ensure_database(
    creds: AdminCredentials,
    database: str,
    role: str,
    password: str,
    connect_timeout: float,
    template: str | None = None,
    spare: str | None = None,
) -> Provisioned:
    """Make ``role`` (with ``password``) the owner of ``database``, which PUBLIC cannot reach.

    Idempotent: creates what is missing, resets the password and the grants on
    what exists. The region's shared databases are hardened once per region by
    ``harden_shared_databases``, not here: that statement updates a catalog row
    every tenant shares, and concurrent updates of it fail (``XX000 tuple
    concurrently updated``).

    With ``template`` (a migrated template database, :func:`publish_template`), a
    missing database is created as its copy and its objects handed to ``role``
    (:func:`adopt_template_objects`); the result says ``cloned``. With ``spare`` too (a
    copy of that template made ahead of demand, :func:`create_spare`), the missing database
    is that spare, renamed, when it is still there: the rename is the claim, so of two
    operators claiming one spare only one gets it, and the other makes its own copy.
    """
    # One admin slot for both connections: a copy is handed over as soon as it is made,
    # not after every other tenant waiting for a slot has had its copy made.
    async with creds.slots or contextlib.nullcontext():
        async with _connect(creds, connect_timeout, None) as conn:
            made = await _ensure_role_and_database(conn, database, role, password, template, spare)
        if made.cloned:
            async with _connect(creds, connect_timeout, database) as conn:
                await _adopt(conn, role)
    return made


async def _ensure_role_and_database(
    conn: psycopg.AsyncConnection[tuple[object, ...]],
    database: str,
    role: str,
    password: str,
    template: str | None,
    spare: str | None = None,
) -> Provisioned:
    role_id = sql.Identifier(role)
    db_id = sql.Identifier(database)
    verifier = conn.pgconn.encrypt_password(
        password.encode(), role.encode(), b"scram-sha-256"
    ).decode()
    created_role = not await _exists(conn, "SELECT 1 FROM pg_roles WHERE rolname = %s", role)
    if created_role:
        await conn.execute(
            sql.SQL(
                "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD {}"
            ).format(role_id, sql.Literal(verifier))
        )
    else:
        await conn.execute(
            sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(role_id, sql.Literal(verifier))
        )
    cur = await conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    row = await cur.fetchone()
    if not (row and row[0]):
        # CREATE DATABASE ... OWNER needs the admin to be able to SET ROLE to the owner.
        await conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(role_id))
    created_database = not await _exists(
        conn, "SELECT 1 FROM pg_database WHERE datname = %s", database
    )
    claimed = False
    if not created_database:
        await conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(db_id, role_id))
    elif spare is not None and await _claim(conn, spare, database, role):
        claimed = True
    elif template:
        await conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE {}").format(
                db_id, role_id, sql.Identifier(template)
            )
        )
    else:
        await conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(db_id, role_id))
    await conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db_id))
    cloned = claimed or (created_database and bool(template))
    if created_role or created_database:
        log.info(
            "provisioned database %s (role created: %s, database created: %s%s)",
            database,
            created_role,
            created_database,
            (f", spare {spare}" if claimed else f", from template {template}") if cloned else "",
            extra={"database": database},
        )
    return Provisioned(created_role, created_database, cloned, spare if claimed else None)


async def _claim(
    conn: psycopg.AsyncConnection[tuple[object, ...]], spare: str, database: str, role: str
) -> bool:
    """Rename ``spare`` to ``database``, owned by ``role`` and open to connections, in one
    transaction; False when the spare is gone (another operator claimed or dropped it) or in
    use. Nothing else renames a database, so no two callers ever get the same spare."""
    db_id = sql.Identifier(database)
    try:
        async with conn.transaction():
            await conn.execute(
                sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(spare), db_id)
            )
            await conn.execute(
                sql.SQL("ALTER DATABASE {} OWNER TO {}").format(db_id, sql.Identifier(role))
            )
            await conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(db_id))
    except (psycopg.errors.InvalidCatalogName, psycopg.errors.ObjectInUse) as e:
        log.info("spare database %s not claimed (%s); copying the template", spare, e.sqlstate)
        return False
    return True


async def adopt_template_objects(
    creds: AdminCredentials, database: str, role: str, connect_timeout: float
) -> None:
    """Hand every object of ``database`` that :data:`TEMPLATE_ROLE` owns to ``role``, and drop
    the template role's privileges there. Idempotent; nothing to do without the template role.

    A clone of a template starts with the template's objects owned by the template
    role (and its privilege on the ``public`` schema); afterwards the database looks
    as if ``role`` had run the migrations itself. ``REASSIGN OWNED`` would also hand
    over the databases the template role owns: it owns none (the admin owns the
    templates).
    """
    async with _admin(creds, connect_timeout, database) as conn:
        await _adopt(conn, role)


async def _adopt(conn: psycopg.AsyncConnection[tuple[object, ...]], role: str) -> None:
    if not await _exists(conn, "SELECT 1 FROM pg_roles WHERE rolname = %s", TEMPLATE_ROLE):
        return
    template_id, role_id = sql.Identifier(TEMPLATE_ROLE), sql.Identifier(role)
    async with conn.transaction():
        await conn.execute(sql.SQL("REASSIGN OWNED BY {} TO {}").format(template_id, role_id))
        await conn.execute(sql.SQL("DROP OWNED BY {}").format(template_id))


async def databases_named(
    creds: AdminCredentials, connect_timeout: float, prefix: str
) -> list[str]:
    """The databases named ``prefix…`` (the region's templates, or spares), in name order."""
    async with _admin(creds, connect_timeout) as conn:
        cur = await conn.execute(
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s) ORDER BY datname",
            (prefix,),
        )
        return [str(row[0]) for row in await cur.fetchall()]


@asynccontextmanager
async def template_lock(
    creds: AdminCredentials, connect_timeout: float, key: str
) -> AsyncIterator[None]:
    """Held by one operator at a time per region and ``key``: a session advisory lock.

    Its connection holds one of the region's admin slots like any other (the cap is
    the operator's whole count of admin connections), so what it guards must make do
    with the others: a caller needs a cap of two at least. It is closed at the end,
    which releases the lock even when the holder fails.
    """
    async with _admin(creds, connect_timeout) as conn:
        await conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
        yield


async def prepare_template(creds: AdminCredentials, building: str, connect_timeout: float) -> None:
    """An empty database ``building`` (any leftover of an interrupted build dropped first)
    that PUBLIC cannot reach, in which :data:`TEMPLATE_ROLE` may create the schema."""
    template_id, db_id = sql.Identifier(TEMPLATE_ROLE), sql.Identifier(building)
    async with _admin(creds, connect_timeout) as conn:
        if not await _exists(conn, "SELECT 1 FROM pg_roles WHERE rolname = %s", TEMPLATE_ROLE):
            await conn.execute(
                sql.SQL(
                    "CREATE ROLE {} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION"
                ).format(template_id)
            )
        cur = await conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        row = await cur.fetchone()
        if not (row and row[0]):
            # The admin acts as the template role while migrating, and hands its objects over.
            await conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(template_id))
        await conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(db_id))
        await conn.execute(sql.SQL("CREATE DATABASE {}").format(db_id))
        await conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db_id))
    async with _admin(creds, connect_timeout, building) as conn:
        await conn.execute(
            sql.SQL("GRANT USAGE, CREATE ON SCHEMA public TO {}").format(template_id)
        )


async def publish_template(
    creds: AdminCredentials, building: str, name: str, connect_timeout: float
) -> None:
    """Freeze ``building`` (migrated), close it to connections and rename it ``name``: from then
    on it is only ever copied (``CREATE DATABASE … TEMPLATE``, which needs no session in it)."""
    db_id = sql.Identifier(building)
    async with _admin(creds, connect_timeout, building) as conn:
        # Every row frozen, its hint bits set: no copy has to set them again (and log them).
        await conn.execute("VACUUM (FREEZE, ANALYZE)")
    async with _admin(creds, connect_timeout) as conn:
        await conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(db_id))
        await conn.execute(
            sql.SQL("ALTER DATABASE {} RENAME TO {}").format(db_id, sql.Identifier(name))
        )
    log.info("template database %s is ready", name)


async def harden_shared_databases(creds: AdminCredentials, connect_timeout: float) -> list[str]:
    """Revoke PUBLIC's CONNECT on the region's shared databases; return those changed.

    The admin database, ``postgres`` and ``template1`` are reachable by every
    role by default, so a tenant's role could connect to them. Each is changed
    only while PUBLIC still has CONNECT (the admin keeps its own grant), so a
    hardened region sees reads only and a second caller never races the first.
    """
    changed: list[str] = []
    async with _admin(creds, connect_timeout) as conn:
        for name in sorted({creds.database, "postgres", "template1"}):
            cur = await conn.execute(
                "SELECT has_database_privilege('public', datname, 'CONNECT') "
                "FROM pg_database WHERE datname = %s",
                (name,),
            )
            row = await cur.fetchone()
            if row is None or not row[0]:
                continue
            db_id = sql.Identifier(name)
            grant = sql.SQL("GRANT CONNECT ON DATABASE {} TO CURRENT_USER")
            await conn.execute(grant.format(db_id))
            await conn.execute(sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(db_id))
            changed.append(name)
    if changed:
        log.info("revoked PUBLIC's CONNECT on %s", ", ".join(changed))
    return changed


async def drop_database(
    creds: AdminCredentials, database: str, role: str, connect_timeout: float
) -> None:
    """Drop the database (disconnecting its sessions) and the role. Idempotent."""
    async with _admin(creds, connect_timeout) as conn:
        await conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
        )
        await conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
    log.info("dropped database and role %s", database, extra={"database": database})


async def ensure_scratch_database(
    creds: AdminCredentials, database: str, role: str, connect_timeout: float
) -> bool:
    """The restore drill's empty scratch database, owned by the tenant's role; True if created.

    The tenant's role has no CREATEDB: owning this database lets its drill restore
    into it and empty it again with nothing but the tenant's own credentials.
    """
    async with _admin(creds, connect_timeout) as conn:
        if await _exists(conn, "SELECT 1 FROM pg_database WHERE datname = %s", database):
            return False
        db_id = sql.Identifier(database)
        await conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(db_id, sql.Identifier(role))
        )
        await conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db_id))
    log.info("created scratch database %s for restore drills", database)
    return True


async def drop_scratch_database(
    creds: AdminCredentials, database: str, connect_timeout: float
) -> None:
    async with _admin(creds, connect_timeout) as conn:
        await conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
        )


async def drop_template(creds: AdminCredentials, name: str, connect_timeout: float) -> None:
    """Drop a template database (one of an older schema, or an interrupted build)."""
    async with _admin(creds, connect_timeout) as conn:
        await conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
    log.info("dropped template database %s", name)


async def create_spare(
    creds: AdminCredentials, name: str, template: str, connect_timeout: float
) -> None:
    """A copy of ``template`` named ``name`` that PUBLIC cannot reach and no session may enter
    (not even autovacuum's, which would keep it from being renamed) until it is claimed."""
    db_id = sql.Identifier(name)
    async with _admin(creds, connect_timeout) as conn:
        await conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {} ALLOW_CONNECTIONS false").format(
                db_id, sql.Identifier(template)
            )
        )
        await conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db_id))


async def drop_spare(creds: AdminCredentials, name: str, connect_timeout: float) -> None:
    """Drop a spare database (of a schema gone, or beyond the pool's size). A spare claimed
    meanwhile has another name by then, so this never drops a tenant's database."""
    async with _admin(creds, connect_timeout) as conn:
        await conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    log.info("dropped spare database %s", name)
