"""Objects of shared collections in a space: get, list, the change feed, export.

Every read joins the caller's membership, so a non-member reads nothing. A get
is one statement on either backend: the caller's membership joined to the
object and its authors' names. The writes are ``_space_writes``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import and_, bindparam, or_, select, tuple_
from sqlalchemy.sql.elements import ColumnElement

from tenant_worker._errors import (
    InvalidArgument,
    NotFound,
)
from tenant_worker._records import (
    Author,
    CallContext,
    ChangePage,
    ChangeRecord,
    SpaceObjectRecord,
    SpacePage,
)
from tenant_worker.spaces import _cursor
from tenant_worker.spaces._access import (
    MEMBERS,
    SPACE_ID,
    Handles,
    is_member,
    no_such_space,
)
from tenant_worker.spaces._space_writes import SpaceWrites
from tenant_worker.spaces._write_plan import OBJECTS, shared_collection
from tenant_worker.storage._db import Prepared, one_row
from tenant_worker.storage._models import Space, SpaceChange, UserProfile, utcnow
from tenant_worker.storage._store import (
    check_object_id,
    is_live,
    require_user,
    to_record,
)

CHANGES = SpaceChange.__table__
_CREATOR = UserProfile.__table__.alias("creator")
_EDITOR = UserProfile.__table__.alias("editor")
#: One object of a space, only if the caller is a member of it: no row for a
#: non-member (or a space that does not exist), the role alone when the object
#: is missing. The authors' display names come along. Built once, so its
#: compiled form is cached.
_GET = (
    select(
        MEMBERS.c.role,
        OBJECTS,
        _CREATOR.c.display_name.label("created_by_name"),
        _EDITOR.c.display_name.label("updated_by_name"),
    )
    .select_from(
        MEMBERS.outerjoin(
            OBJECTS,
            and_(
                OBJECTS.c.space_id == MEMBERS.c.space_id,
                OBJECTS.c.collection == bindparam("collection"),
                OBJECTS.c.object_id == bindparam("object_id"),
            ),
        )
        .outerjoin(_CREATOR, _CREATOR.c.user_id == OBJECTS.c.created_by)
        .outerjoin(_EDITOR, _EDITOR.c.user_id == OBJECTS.c.updated_by)
    )
    .where(MEMBERS.c.space_id == bindparam("space"), MEMBERS.c.user_id == bindparam("user"))
)


class _Got(NamedTuple):
    """A row of :data:`_PG_GET` (an ``ObjectRow`` when the object was found)."""

    role: str
    space_id: str | None
    collection: str
    object_id: str | None
    data: dict[str, Any]
    schema_version: int
    version: int
    size_bytes: int
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    correlation_id: str
    created_by: str
    updated_by: str
    #: The file ids the version names (None: none).
    files: list[str] | None
    created_by_name: str | None
    updated_by_name: str | None


_PG_COLUMNS = (
    "SELECT m.role, o.space_id, o.collection, o.object_id, o.data, o.schema_version,"
    " o.version, o.size_bytes, o.created_at, o.updated_at, o.expires_at, o.correlation_id,"
    " o.created_by, o.updated_by, o.files,"
)
_PG_FROM = (
    " FROM space_members AS m"
    " LEFT OUTER JOIN space_objects AS o"
    " ON o.space_id = m.space_id AND o.collection = $3 AND o.object_id = $4"
)
_PG_WHERE = " WHERE m.space_id = $1 AND m.user_id = $2"
_PG_KEY = ("space", "user", "collection", "object_id")
#: ``_GET`` on PostgreSQL, for a tenant that shows display names: prepared, run on the
#: driver's connection.
_PG_GET_NAMED = Prepared(
    _PG_COLUMNS
    + " creator.display_name AS created_by_name, editor.display_name AS updated_by_name"
    + _PG_FROM
    + " LEFT OUTER JOIN user_profiles AS creator ON creator.user_id = o.created_by"
    + " LEFT OUTER JOIN user_profiles AS editor ON editor.user_id = o.updated_by"
    + _PG_WHERE,
    _PG_KEY,
    _Got._make,
)
#: The same for a tenant that shows none: no names to look up.
_PG_GET = Prepared(
    _PG_COLUMNS
    + " CAST(NULL AS varchar) AS created_by_name, CAST(NULL AS varchar) AS updated_by_name"
    + _PG_FROM
    + _PG_WHERE,
    _PG_KEY,
    _Got._make,
)
DEFAULT_FEED_PAGE = 100
MAX_FEED_PAGE = 1000
_EXPORT_BATCH = 200


def _live(retention: timedelta | None, now: datetime) -> ColumnElement[bool]:
    clauses = [or_(OBJECTS.c.expires_at.is_(None), OBJECTS.c.expires_at > now)]
    if retention is not None:
        clauses.append(OBJECTS.c.updated_at > now - retention)
    return and_(*clauses)


class SpaceObjects(SpaceWrites):
    """Objects in spaces: the writes of ``SpaceWrites`` and the reads."""

    # --- reads --------------------------------------------------------------------------

    async def get(
        self, ctx: CallContext, space: str, collection: str, object_id: str
    ) -> SpaceObjectRecord:
        user = require_user(ctx)
        policy = self.store.policy()
        shared_collection(policy, collection)
        check_object_id(object_id)
        if not SPACE_ID.match(space):
            raise no_such_space(space)
        key = {"space": space, "user": user, "collection": collection, "object_id": object_id}
        names = policy.spec.identity.name_claim is not None
        row: Any
        async with self.store.statements() as conn:
            if self.store.is_postgres:
                row = await one_row(conn, _PG_GET_NAMED if names else _PG_GET, key)
            else:
                row = (await conn.execute(_GET, key)).one_or_none()
            handle_key = await self.handles.key(conn)
        if row is None:
            raise no_such_space(space)
        if row.object_id is None or not is_live(row, policy.retention(collection), utcnow()):
            raise NotFound(f"{collection}/{object_id} does not exist in space {space}")

        def author(user_id: str, display_name: str | None) -> Author:
            return Handles.author(handle_key, user_id, display_name if names else None)

        return SpaceObjectRecord(
            space=space,
            object=to_record(row, policy),
            created_by=author(row.created_by, row.created_by_name),
            updated_by=author(row.updated_by, row.updated_by_name),
        )

    async def list(
        self, ctx: CallContext, space: str, collection: str, page_size: int = 0, cursor: str = ""
    ) -> SpacePage:
        user = require_user(ctx)
        policy = self.store.policy()
        shared_collection(policy, collection)
        if page_size < 0:
            raise InvalidArgument("page_size", "must not be negative")
        size = min(page_size or self.default_page_size, self.max_page_size)
        stmt = (
            select(OBJECTS)
            .join(
                MEMBERS,
                and_(MEMBERS.c.space_id == OBJECTS.c.space_id, MEMBERS.c.user_id == user),
            )
            .where(
                OBJECTS.c.space_id == space,
                OBJECTS.c.collection == collection,
                _live(policy.retention(collection), utcnow()),
            )
            .order_by(OBJECTS.c.object_id)
            .limit(size + 1)
        )
        if cursor:
            stmt = stmt.where(OBJECTS.c.object_id > _cursor.decode_list(cursor, space, collection))
        async with self.store.transaction() as s:
            conn = await s.connection()
            rows = list((await conn.execute(stmt)).all())
            if not rows and not await is_member(conn, space, user):
                raise no_such_space(space)
            more = len(rows) > size
            rows = rows[:size]
            records = await self._records(conn, rows)
        next_cursor = _cursor.encode_list(space, collection, rows[-1].object_id) if more else ""
        return SpacePage(records, next_cursor)

    async def changes(
        self, ctx: CallContext, space: str, cursor: str = "", limit: int = 0
    ) -> ChangePage:
        """The space's changes after ``cursor``, oldest first, at most ``limit``.

        Changes are numbered under the space's row lock, in commit order, so a
        reader that saw change N has seen every change before it: following
        ``next_cursor`` gives every change exactly once.
        """
        user = require_user(ctx)
        if limit < 0:
            raise InvalidArgument("limit", "must not be negative")
        size = min(limit or DEFAULT_FEED_PAGE, MAX_FEED_PAGE)
        after = _cursor.decode_feed(cursor, space)
        stmt = (
            select(CHANGES)
            .join(
                MEMBERS,
                and_(MEMBERS.c.space_id == CHANGES.c.space_id, MEMBERS.c.user_id == user),
            )
            .where(CHANGES.c.space_id == space, CHANGES.c.seq > after)
            .order_by(CHANGES.c.seq)
            .limit(size + 1)
        )
        async with self.store.transaction() as s:
            conn = await s.connection()
            rows = list((await conn.execute(stmt)).all())
            if not rows and not await is_member(conn, space, user):
                raise no_such_space(space)
            more = len(rows) > size
            rows = rows[:size]
            authors = await self.handles.authors(conn, self.store, [r.author for r in rows])
        changes = [
            ChangeRecord(
                r.seq, r.collection, r.object_id, r.version, r.action, authors[r.author], r.at
            )
            for r in rows
        ]
        last = rows[-1].seq if rows else after
        return ChangePage(changes, _cursor.encode_feed(space, last), more)

    async def export(self, ctx: CallContext) -> AsyncIterator[SpaceObjectRecord]:
        """The objects in spaces the caller created or last changed, with their space."""
        user = require_user(ctx)
        policy = self.store.policy()
        now = utcnow()
        mine = or_(OBJECTS.c.created_by == user, OBJECTS.c.updated_by == user)
        async with self.store.transaction() as s:
            conn = await s.connection()
            after: tuple[str, str, str] = ("", "", "")
            key = tuple_(OBJECTS.c.space_id, OBJECTS.c.collection, OBJECTS.c.object_id)
            while True:
                rows = list(
                    (
                        await conn.execute(
                            select(OBJECTS, Space.name.label("space_name"))
                            .join(Space, Space.id == OBJECTS.c.space_id)
                            .where(mine, key > after)
                            .order_by(OBJECTS.c.space_id, OBJECTS.c.collection, OBJECTS.c.object_id)
                            .limit(_EXPORT_BATCH)
                        )
                    ).all()
                )
                live = [r for r in rows if is_live(r, policy.retention(r.collection), now)]
                names = {r.space_id: r.space_name for r in live}
                for record in await self._records(conn, live, names):
                    yield record
                if len(rows) < _EXPORT_BATCH:
                    break
                after = (rows[-1].space_id, rows[-1].collection, rows[-1].object_id)
