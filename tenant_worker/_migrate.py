"""Running the Alembic migrations (``stowage worker migrate``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # Passed as an attribute, not an option: ConfigParser would mangle '%' in passwords.
    cfg.attributes["database_url"] = database_url
    return cfg


def migrate(database_url: str, revision: str = "head") -> None:
    """Bring the tenant's database schema to ``revision``. Safe to run repeatedly."""
    command.upgrade(alembic_config(database_url), revision)
