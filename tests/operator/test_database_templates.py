"""New tenant databases are copies of the region's migrated template database.

The operator builds ``stowage-template-<head revision>`` once per region server
and creates each new tenant database as its copy, handing every object to the
tenant's role: the copy must be indistinguishable from a database the
migrations filled as that role, closed to other tenants' roles, and backed up
and drilled the same way. A newer schema (another head revision) gets a new
template, and the old one goes. Copies made ahead of demand (spares) are handed
out by renaming them: each to one tenant only, and only of the current schema.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from stowage_operator import _naming
from stowage_operator._migrating import Migrator
from stowage_operator._postgres import TEMPLATE_ROLE, ensure_database, ensure_scratch_database
from stowage_operator._spares import SPARE_PREFIX, Spares, spare_prefix
from stowage_operator._templates import TEMPLATE_PREFIX, Templates, template_name
from stowage_operator._types import AdminCredentials, Namespace, TenantName

import tenant_worker
from stowage_testing.kube import KubeCluster
from stowage_testing.operator import secret_data, tenant_doc, wait_for_tenant
from stowage_testing.postgres import HOW, PG_DIRS, PostgresServer, running_postgres
from stowage_testing.tools import find_program, missing

pytestmark = pytest.mark.kube

WORKER_MIGRATIONS = Path(tenant_worker.__file__).resolve().parent / "migrations"


def _admin(server: PostgresServer) -> AdminCredentials:
    return AdminCredentials(
        host=server.host,
        port=server.port,
        database="postgres",
        ssl_mode="disable",
        user=server.user,
        password=server.password,
    )


def _catalog(conn: psycopg.Connection[Any], owner: str) -> dict[str, Any]:
    """What the migrations leave in a database, with ``owner`` written as ``<owner>``."""

    def who(role: str) -> str:
        return "<owner>" if role == owner else role

    def query(text: str) -> list[tuple[Any, ...]]:
        return sorted(conn.execute(text).fetchall())

    relations = query(
        "SELECT c.relname, c.relkind::text, pg_get_userbyid(c.relowner), "
        "coalesce(array_to_string(c.relacl, ','), '') FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'"
    )
    return {
        "version": query("SELECT version_num FROM alembic_version"),
        "relations": [
            (name, kind, who(role), acl.replace(owner, "<owner>"))
            for name, kind, role, acl in relations
        ],
        "columns": query(
            "SELECT table_name, column_name, data_type, is_nullable, "
            "coalesce(column_default, ''), coalesce(identity_generation, '') "
            "FROM information_schema.columns WHERE table_schema = 'public'"
        ),
        "indexes": query("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"),
        "constraints": query(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE connamespace = 'public'::regnamespace"
        ),
        "types": [
            (name, kind, who(role))
            for name, kind, role in query(
                "SELECT typname, typtype::text, pg_get_userbyid(typowner) FROM pg_type "
                "WHERE typnamespace = 'public'::regnamespace"
            )
        ],
        "functions": query(
            "SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
        ),
        "public_schema": [
            (who(role), (acl or "").replace(owner, "<owner>"))
            for role, acl in query(
                "SELECT pg_get_userbyid(nspowner), array_to_string(nspacl, ',') "
                "FROM pg_namespace WHERE nspname = 'public'"
            )
        ],
    }


def _migrated_reference(postgres: PostgresServer) -> tuple[str, str]:
    """A database and role made the old way: created empty, migrated as the role."""
    from tenant_worker import migrate

    name = f"reference_{uuid.uuid4().hex[:10]}"
    password = uuid.uuid4().hex
    with psycopg.connect(postgres.dsn(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(password)
            )
        )
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(name)
            )
        )
    migrate(
        f"postgresql+psycopg://{name}:{password}@{postgres.host}:{postgres.port}/{name}"
        "?sslmode=disable"
    )
    return name, name


def _template_role_holds_nothing_in(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM pg_shdepend d JOIN pg_roles r ON r.oid = d.refobjid "
        "WHERE r.rolname = %s AND d.dbid = (SELECT oid FROM pg_database "
        "WHERE datname = current_database())",
        (TEMPLATE_ROLE,),
    ).fetchone()
    return row is not None and row[0] == 0


def test_a_new_tenant_database_is_a_copy_of_the_template_owned_by_the_tenant_alone(
    kube: KubeCluster, namespace: str, region: str, postgres: PostgresServer
) -> None:
    kube.apply(tenant_doc("acme", namespace, region))
    wait_for_tenant(kube, namespace, "acme")
    creds = secret_data(kube, namespace, "tenant-acme-db")
    reference, reference_role = _migrated_reference(postgres)

    head = asyncio.run(Migrator(1).head())
    assert head is not None
    with psycopg.connect(postgres.dsn(), autocommit=True) as conn:
        templates = conn.execute(
            "SELECT datname, datallowconn FROM pg_database WHERE starts_with(datname, %s)",
            (TEMPLATE_PREFIX,),
        ).fetchall()
    # One finished template, of the current schema, that no session can enter.
    assert templates == [(template_name(head), False)]

    with psycopg.connect(postgres.dsn(creds["database"]), autocommit=True) as conn:
        cloned = _catalog(conn, creds["username"])
        assert _template_role_holds_nothing_in(conn)
    with psycopg.connect(postgres.dsn(reference), autocommit=True) as conn:
        migrated = _catalog(conn, reference_role)
    assert cloned["version"] == [(head,)]
    assert cloned["columns"] and cloned["indexes"] and cloned["constraints"]
    assert cloned == migrated
    assert cloned["relations"] and all(r[2] == "<owner>" for r in cloned["relations"])

    # The tenant's own role uses its tables as their owner.
    with psycopg.connect(creds["url"].replace("postgresql+psycopg", "postgresql")) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(head,)]


def test_another_tenants_role_can_neither_connect_to_nor_read_a_copied_database(
    kube: KubeCluster, namespace: str, region: str, postgres: PostgresServer
) -> None:
    kube.apply(tenant_doc("acme", namespace, region))
    kube.apply(tenant_doc("globex", namespace, region))
    wait_for_tenant(kube, namespace, "acme")
    wait_for_tenant(kube, namespace, "globex")
    acme = secret_data(kube, namespace, "tenant-acme-db")
    globex = secret_data(kube, namespace, "tenant-globex-db")

    with pytest.raises(psycopg.OperationalError, match="permission denied"):
        psycopg.connect(
            host=globex["host"],
            port=int(globex["port"]),
            dbname=acme["database"],
            user=globex["username"],
            password=globex["password"],
            connect_timeout=5,
        ).close()
    # Even inside the database (as the admin acting as globex's role), no table is readable.
    with psycopg.connect(postgres.dsn(acme["database"]), autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(globex["username"])))
        for table in tables:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table)))


def test_a_copied_database_is_backed_up_and_drilled_with_the_tenants_credentials_only(
    kube: KubeCluster, namespace: str, region: str, postgres: PostgresServer, tmp_path: Path
) -> None:
    pg_dump = find_program("pg_dump", PG_DIRS)
    if pg_dump is None:
        missing("pg_dump/pg_restore/psql", HOW)
        raise AssertionError("unreachable")
    kube.apply(tenant_doc("acme", namespace, region))
    wait_for_tenant(kube, namespace, "acme")
    creds = secret_data(kube, namespace, "tenant-acme-db")
    scratch = f"{creds['database'][:50]}_drill"
    assert asyncio.run(ensure_scratch_database(_admin(postgres), scratch, creds["username"], 10))

    def backup(*args: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "STOWAGE_DATABASE_URL": creds["url"],
            "STOWAGE_BACKUP_DIR": str(tmp_path / "backups"),
            "STOWAGE_PG_BIN": str(pg_dump.parent),
        }
        return subprocess.run(
            [sys.executable, "-m", "stowage", "backup", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    ran = backup("run")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    drill = backup("drill", "--scratch-database", scratch)
    assert drill.returncode == 0, drill.stdout + drill.stderr


def test_a_new_head_revision_builds_a_new_template_and_drops_the_old(tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    shutil.copytree(WORKER_MIGRATIONS, migrations, ignore=shutil.ignore_patterns("__pycache__"))
    with running_postgres() as server:
        admin = _admin(server)

        async def template_of(operators: int) -> list[str | None]:
            """What ``operators`` operators starting at once find (each its own process)."""
            migrators = [Migrator(1, migrations) for _ in range(operators)]
            try:
                return list(
                    await asyncio.gather(
                        *(Templates(m, 10, max_connections=2).template(admin) for m in migrators)
                    )
                )
            finally:
                for m in migrators:
                    m.close()

        first = asyncio.run(template_of(2))
        old_head = asyncio.run(Migrator(1, migrations).head())
        assert old_head is not None
        assert first == [template_name(old_head)] * 2

        # A newer worker: one revision more, with a table of its own.
        (migrations / "versions" / "9999_probe.py").write_text(
            '"""A revision after the others."""\n\n'
            "import sqlalchemy as sa\n"
            "from alembic import op\n\n"
            'revision = "9999"\n'
            f"down_revision = {old_head!r}\n"
            "branch_labels = None\n"
            "depends_on = None\n\n\n"
            "def upgrade() -> None:\n"
            '    op.create_table("probe", sa.Column("id", sa.Integer, primary_key=True))\n\n\n'
            "def downgrade() -> None:\n"
            '    op.drop_table("probe")\n'
        )
        [second] = asyncio.run(template_of(1))
        assert second == template_name("9999")

        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            names = [
                r[0]
                for r in conn.execute(
                    "SELECT datname FROM pg_database WHERE starts_with(datname, %s)",
                    (TEMPLATE_PREFIX,),
                )
            ]
        assert names == [second]

        made = asyncio.run(
            ensure_database(admin, "stowage_ns_acme", "stowage_ns_acme", "pw", 10, second)
        )
        assert made.cloned
        with psycopg.connect(server.dsn("stowage_ns_acme"), autocommit=True) as conn:
            assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("9999",)]
            owner = conn.execute("SELECT pg_get_userbyid(relowner) FROM pg_class "
                                 "WHERE relname = 'probe'").fetchone()  # fmt: skip
            assert owner == ("stowage_ns_acme",)


def test_an_operator_capped_at_one_admin_connection_builds_no_template(
    postgres: PostgresServer,
) -> None:
    # The advisory lock's session and the build's would need two slots: with one, the
    # tenants are provisioned the old way (an empty database, then the migrations).
    migrator = Migrator(1)
    admin = dataclasses.replace(_admin(postgres), slots=asyncio.Semaphore(1))
    try:
        template = asyncio.run(Templates(migrator, 10, max_connections=1).template(admin))
    finally:
        migrator.close()
    assert template is None
    assert admin.slots is not None and not admin.slots.locked()


def test_a_copy_interrupted_before_it_was_handed_over_is_handed_over_on_the_next_pass(
    kube: KubeCluster, namespace: str, region: str, postgres: PostgresServer
) -> None:
    # The state a crash between the copy and the hand-over leaves: the tenant's role and a
    # copy of the template whose objects the template role still owns.
    migrator = Migrator(1)
    try:
        template = asyncio.run(
            Templates(migrator, 10, max_connections=2).template(_admin(postgres))
        )
    finally:
        migrator.close()
    assert template is not None
    database = _naming.database_name(Namespace(namespace), TenantName("acme"))
    with psycopg.connect(postgres.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(database)))
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE {}").format(
                sql.Identifier(database), sql.Identifier(database), sql.Identifier(template)
            )
        )
    with psycopg.connect(postgres.dsn(database), autocommit=True) as conn:
        assert not _template_role_holds_nothing_in(conn)

    kube.apply(tenant_doc("acme", namespace, region))
    wait_for_tenant(kube, namespace, "acme")
    creds = secret_data(kube, namespace, "tenant-acme-db")
    assert creds["database"] == database
    with psycopg.connect(postgres.dsn(database), autocommit=True) as conn:
        assert _template_role_holds_nothing_in(conn)
        owners = {r[2] for r in _catalog(conn, creds["username"])["relations"]}
    assert owners == {"<owner>"}


def _databases(server: PostgresServer, prefix: str) -> list[tuple[str, bool, bool]]:
    """Each database named ``prefix…``: its name, whether sessions may enter it, and whether
    PUBLIC holds any privilege on it."""
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname, datallowconn, datacl IS NULL OR EXISTS "
            "(SELECT 1 FROM aclexplode(datacl) a WHERE a.grantee = 0) "
            "FROM pg_database WHERE starts_with(datname, %s) ORDER BY datname",
            (prefix,),
        ).fetchall()
    return [(str(name), bool(allowed), bool(public)) for name, allowed, public in rows]


def _write_revision(migrations: Path, revision: str, down: str) -> None:
    (migrations / "versions" / f"{revision}_probe.py").write_text(
        '"""A revision after the others."""\n\n'
        "import sqlalchemy as sa\n"
        "from alembic import op\n\n"
        f"revision = {revision!r}\n"
        f"down_revision = {down!r}\n"
        "branch_labels = None\n"
        "depends_on = None\n\n\n"
        "def upgrade() -> None:\n"
        f'    op.create_table("probe_{revision}", sa.Column("id", sa.Integer, primary_key=True))\n'
        "\n\n"
        "def downgrade() -> None:\n"
        f'    op.drop_table("probe_{revision}")\n'
    )


def test_a_tenant_given_a_spare_gets_the_template_copy_handed_over_and_the_pool_refills() -> None:
    with running_postgres() as server:
        admin = _admin(server)
        migrator = Migrator(1)

        async def scenario() -> tuple[str | None, str | None, Any]:
            templates = Templates(migrator, 10, max_connections=2)
            spares = Spares(templates, 10, size=2)
            await spares.fill(admin)
            template = await templates.template(admin)
            assert template is not None
            before = _databases(server, SPARE_PREFIX)
            spare = spares.take(admin, template)
            made = await ensure_database(
                admin, "stowage_ns_acme", "stowage_ns_acme", "pw", 10, template, spare
            )
            await spares.fill(admin)
            return spare, template, (before, made)

        try:
            spare, template, (before, made) = asyncio.run(scenario())
        finally:
            migrator.close()
        assert template is not None and spare is not None
        # Two spares of the current template, closed to sessions and to PUBLIC.
        assert len(before) == 2 and spare in [name for name, _, _ in before]
        assert all(n.startswith(spare_prefix(template)) and not a and not p for n, a, p in before)
        assert made.created_database and made.cloned and made.spare == spare
        # The spare became the tenant's database, and another took its place.
        after = _databases(server, SPARE_PREFIX)
        assert len(after) == 2 and spare not in [name for name, _, _ in after]
        assert _databases(server, "stowage_ns_acme") == [("stowage_ns_acme", True, False)]

        reference, reference_role = _migrated_reference(server)
        with psycopg.connect(server.dsn("stowage_ns_acme"), autocommit=True) as conn:
            claimed = _catalog(conn, "stowage_ns_acme")
            assert _template_role_holds_nothing_in(conn)
            owner = conn.execute(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
            ).fetchone()
        with psycopg.connect(server.dsn(reference), autocommit=True) as conn:
            migrated = _catalog(conn, reference_role)
        assert owner == ("stowage_ns_acme",)
        assert claimed == migrated


def test_two_operators_offered_one_spare_hand_it_to_one_tenant_only() -> None:
    with running_postgres() as server:
        admin = _admin(server)
        migrator = Migrator(1)

        async def scenario() -> tuple[str, list[Any]]:
            templates = Templates(migrator, 10, max_connections=2)
            await Spares(templates, 10, size=1).fill(admin)
            template = await templates.template(admin)
            assert template is not None
            # Each operator's own view of the pool holds the same spare.
            [spare] = [name for name, _, _ in _databases(server, SPARE_PREFIX)]
            made = await asyncio.gather(
                *(
                    ensure_database(
                        admin, f"stowage_ns_{t}", f"stowage_ns_{t}", "pw", 10, template, spare
                    )
                    for t in ("acme", "globex")
                )
            )
            return spare, list(made)

        try:
            spare, made = asyncio.run(scenario())
        finally:
            migrator.close()
        assert sorted(m.spare or "" for m in made) == ["", spare]
        assert all(m.created_database and m.cloned for m in made)
        head = asyncio.run(Migrator(1).head())
        for tenant in ("acme", "globex"):
            database = f"stowage_ns_{tenant}"
            with psycopg.connect(server.dsn(database), autocommit=True) as conn:
                assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
                    (head,)
                ]
                assert _template_role_holds_nothing_in(conn)
                owners = {r[2] for r in _catalog(conn, database)["relations"]}
            assert owners == {"<owner>"}
        assert _databases(server, SPARE_PREFIX) == []


def test_spares_of_an_older_schema_are_dropped_and_never_handed_out(tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    shutil.copytree(WORKER_MIGRATIONS, migrations, ignore=shutil.ignore_patterns("__pycache__"))
    with running_postgres() as server:
        admin = _admin(server)

        async def operator_fills(size: int) -> tuple[Spares, str | None]:
            """A new operator (its own migration process) starting with a pool of ``size``."""
            migrator = Migrator(1, migrations)
            try:
                templates = Templates(migrator, 10, max_connections=2)
                spares = Spares(templates, 10, size=size)
                await spares.fill(admin)
                return spares, await templates.template(admin) if size else None
            finally:
                migrator.close()

        old_spares, old = asyncio.run(operator_fills(2))
        old_head = asyncio.run(Migrator(1, migrations).head())
        assert old is not None and old_head is not None
        _write_revision(migrations, "9999", old_head)
        _, new = asyncio.run(operator_fills(2))
        assert new == template_name("9999")

        names = [name for name, _, _ in _databases(server, SPARE_PREFIX)]
        assert len(names) == 2 and all(n.startswith(spare_prefix(new)) for n in names)
        # The old ones are gone: one the old operator still offers is no longer there to take,
        # and a view of the old pool never offers a spare as the new template's.
        stale = old_spares.take(admin, old)
        assert stale is not None and stale not in names
        assert old_spares.take(admin, new) is None
        made = asyncio.run(
            ensure_database(admin, "stowage_ns_acme", "stowage_ns_acme", "pw", 10, new, stale)
        )
        assert made.cloned and made.spare is None
        with psycopg.connect(server.dsn("stowage_ns_acme"), autocommit=True) as conn:
            assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("9999",)]

        # An operator keeping no spares drops those an earlier pool left.
        asyncio.run(operator_fills(0))
        assert _databases(server, SPARE_PREFIX) == []
