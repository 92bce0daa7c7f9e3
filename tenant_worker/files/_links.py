"""Objects that name files: the check a save makes, the files a read returns with an object,
and the objects that name a file.

An object's version names its files by id (``objects.files``, ``space_objects.files``):
a personal object names files of its owner's own, an object in a space files of
that space. The save checks them in its own transaction (:meth:`FileLinks.check`,
the objects services' ``FileCheck``); a read returns the named files that still
exist (:meth:`FileLinks.resolve`): a file deleted or expired since drops out, and
the object is not changed. Erasing a user takes their objects, and so their links.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from tenant_worker._errors import InvalidArgument
from tenant_worker._records import CallContext
from tenant_worker.files._rows import COLUMNS, expiry, records, retention
from tenant_worker.files._values import FileRecord
from tenant_worker.spaces import Handles
from tenant_worker.storage._models import SpaceObject, StoredFile, StoredObject, utcnow
from tenant_worker.storage._store import Store, require_user

#: The most objects ``linked_from`` names; ``more`` says when there are others.
MAX_LINKED_FROM = 50


@dataclass(frozen=True)
class LinkingObject:
    """An object whose current version names a file."""

    collection: str
    id: str
    #: The space it is in; None: the user's own object.
    space: str | None = None


@dataclass(frozen=True)
class Wanted:
    """The files one object names, and where they must be: the user's own or a space's."""

    files: tuple[str, ...]
    space: str | None = None


class FileLinks:
    """The files objects name: checked at a save, returned with a read, listed from a file."""

    def __init__(self, store: Store, handles: Handles | None = None) -> None:
        self.store = store
        self.handles = handles or Handles()

    async def check(
        self, conn: AsyncConnection, user: str, files: tuple[str, ...], space: str | None
    ) -> None:
        """InvalidArgument naming the first of ``files`` that is not a live file of ``user``'s
        own (``space`` None) or of ``space``; in the caller's transaction."""
        if not files:
            return
        if self.store.policy().spec.files is None:
            raise InvalidArgument("files", "this app stores no files (its spec has no files)")
        rows = (
            await conn.execute(
                select(*COLUMNS).where(StoredFile.id.in_(files), _scope(user, space))
            )
        ).all()
        now, kept = utcnow(), retention(self.store)
        live = {r.id for r in rows if (until := expiry(r, kept)) is None or until > now}
        for i, file_id in enumerate(files):
            if file_id not in live:
                where = f"in space {space}" if space else "of the user's own"
                raise InvalidArgument(
                    f"files[{i}]",
                    f"no file {file_id} {where} (deleted, expired, or elsewhere): an object "
                    + ("in a space names files of that space" if space else "names own files"),
                )

    async def resolve(self, ctx: CallContext, wanted: Iterable[Wanted]) -> dict[str, FileRecord]:
        """The named files that still exist, by id, each where its object may name it (one
        read for all the objects of an answer)."""
        user = require_user(ctx)
        asked = [w for w in wanted if w.files]
        if not asked or self.store.policy().spec.files is None:
            return {}
        scopes = {w.space for w in asked}
        ids = sorted({f for w in asked for f in w.files})
        query = select(*COLUMNS).where(StoredFile.id.in_(ids), _any_scope(user, scopes))
        now, kept = utcnow(), retention(self.store)
        async with self.store.core_transaction() as conn:
            rows = [
                r
                for r in (await conn.execute(query)).all()
                if (until := expiry(r, kept)) is None or until > now
            ]
            found = await records(conn, self.store, self.handles, rows, kept)
        return {f.id: f for f in found}

    async def linked_from(
        self, ctx: CallContext, file: FileRecord
    ) -> tuple[list[LinkingObject], bool]:
        """The objects whose current version names ``file``: the caller's own (a file of
        theirs) or its space's, at most ``MAX_LINKED_FROM``; and whether there are more.

        Looked up by the primary key's prefix (the user's, or the space's objects), so
        no index on ``files`` weighs on the writes that name none."""
        user = require_user(ctx)
        if file.space is None:
            table: Any = StoredObject
            where = StoredObject.owner == user
        else:
            table = SpaceObject
            where = SpaceObject.space_id == file.space
        query = (
            select(table.collection, table.object_id)
            .where(where, table.files.is_not(None), self._names(table, file.id))
            .order_by(table.collection, table.object_id)
            .limit(MAX_LINKED_FROM + 1)
        )
        async with self.store.core_transaction() as conn:
            rows = (await conn.execute(query)).all()
        found = [LinkingObject(r.collection, r.object_id, file.space) for r in rows]
        return found[:MAX_LINKED_FROM], len(found) > MAX_LINKED_FROM

    def _names(self, table: Any, file_id: str) -> ColumnElement[bool]:
        """``table.files`` holds ``file_id``: JSONB containment, or SQLite's ``json_each``."""
        if self.store.is_postgres:
            contains: ColumnElement[bool] = table.files.op("@>")(func.jsonb_build_array(file_id))
            return contains
        each = func.json_each(table.files).table_valued("value")
        return exists(select(literal_column("1")).select_from(each).where(each.c.value == file_id))


def _scope(user: str, space: str | None) -> ColumnElement[bool]:
    if space is None:
        return and_(StoredFile.owner == user, StoredFile.space_id.is_(None))
    return StoredFile.space_id == space


def _any_scope(user: str, spaces: set[str | None]) -> ColumnElement[bool]:
    return or_(*[_scope(user, s) for s in sorted(spaces, key=lambda s: s or "")])
