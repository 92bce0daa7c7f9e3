"""Generated code and schema stay in step with their sources."""

from __future__ import annotations

import filecmp
import importlib.util
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from stowage_testing.postgres import PostgresServer
from tenant_worker import migrate
from tenant_worker.storage._models import Base

_GENERATOR = Path(__file__).resolve().parents[2] / "hack/protogen.py"
_spec = importlib.util.spec_from_file_location("stowage_protogen", _GENERATOR)
assert _spec is not None and _spec.loader is not None
protogen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(protogen)
ROOT, generate = protogen.ROOT, protogen.generate


def test_committed_grpc_stubs_match_the_proto(tmp_path: Path) -> None:
    generate(tmp_path)
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*_pb2*.py*"))
    assert generated, "protoc produced nothing"
    for rel in generated:
        committed = ROOT / rel
        assert committed.exists(), f"{rel} is not committed; run `make proto`"
        assert filecmp.cmp(tmp_path / rel, committed, shallow=False), (
            f"{rel} is stale; run `make proto`"
        )


def _diff(url: str) -> list[object]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    return list(diff)


def test_migrations_build_exactly_the_models_on_postgres(postgres: PostgresServer) -> None:
    url = postgres.sqlalchemy_url(postgres.create_database("schema"))
    migrate(url)
    migrate(url)  # a second run is a no-op
    assert _diff(url) == []


def test_migrations_build_exactly_the_models_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'schema.db'}"
    migrate(url)
    assert _diff(url) == []
