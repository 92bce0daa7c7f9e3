"""Alembic environment: runs against the URL handed over in ``config.attributes``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, event, pool

from tenant_worker.storage._db import is_sqlite, sqlite_pragmas, sync_url
from tenant_worker.storage._models import Base

config = context.config
url = sync_url(config.attributes["database_url"])
engine = create_engine(url, poolclass=pool.NullPool)
if is_sqlite(url):
    event.listen(engine, "connect", sqlite_pragmas)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=is_sqlite(url),
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
