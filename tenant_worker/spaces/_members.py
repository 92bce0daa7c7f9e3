"""Spaces and their members: create, list, look at, invite, change roles, remove, leave.

Also what a sign-in does (``signed_in``): the profile other members see, email
invitations accepted, the organisation's space joined; and the support listing
(spaces and members, never contents).
"""

from __future__ import annotations

import builtins
import hashlib
import uuid
from dataclasses import replace

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from stowage.values import string_problem
from tenant_worker._errors import InvalidArgument, WriteRace
from tenant_worker._records import (
    CallContext,
    Claims,
    InviteResult,
    MemberRecord,
    SpaceDetail,
    SpaceRecord,
    UserId,
)
from tenant_worker.spaces._access import (
    MEMBERS,
    SPACES,
    Conn,
    Handles,
    SpaceRow,
    hand_over,
    member_counts,
    move_quota,
    no_such_space,
    role_in,
    space_record,
)
from tenant_worker.spaces._roles import Role, parse_role, require
from tenant_worker.storage._models import (
    Space,
    SpaceInvite,
    SpaceMember,
    User,
    UserProfile,
    utcnow,
)
from tenant_worker.storage._store import Store, require_user

MAX_NAME = 200
MAX_SUPPORT_PAGE = 1000


def claim_digest(value: str) -> str:
    """How an email or organisation is kept: the SHA-256 of its trimmed, lower-case form."""
    return hashlib.sha256(value.strip().lower().encode()).hexdigest()


def _check_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME:
        raise InvalidArgument("name", f"must be 1-{MAX_NAME} characters")
    if (problem := string_problem(name)) is not None:
        raise InvalidArgument("name", problem)
    return name


class Spaces:
    def __init__(self, store: Store, handles: Handles) -> None:
        self.store = store
        self.handles = handles

    async def _join(self, conn: Conn, space: str, user: str, role: Role) -> bool:
        """Add ``user`` to ``space`` unless already a member; True when added."""
        insert_ = pg_insert if self.store.is_postgres else sqlite_insert
        result = await conn.execute(
            insert_(SpaceMember)
            .values(space_id=space, user_id=user, role=role.value, joined_at=utcnow())
            .on_conflict_do_nothing()
        )
        return bool(getattr(result, "rowcount", 0))

    async def create(self, ctx: CallContext, name: str) -> SpaceRecord:
        user = require_user(ctx)
        name = _check_name(name)
        space_id = uuid.uuid4().hex
        now = utcnow()
        async with self.store.core_transaction() as conn:
            await conn.execute(
                insert(Space).values(
                    id=space_id,
                    name=name,
                    kind="space",
                    org_digest=None,
                    owner=user,
                    seq=0,
                    objects=0,
                    bytes=0,
                    created_at=now,
                )
            )
            await self._join(conn, space_id, user, Role.OWNER)
            await self.store.audit_now(conn, ctx, "space.create", detail={"space": space_id})
        return SpaceRecord(space_id, name, "space", Role.OWNER.value, 0, 0, now, 1, 0)

    async def list(self, ctx: CallContext) -> list[SpaceRecord]:
        user = require_user(ctx)
        async with self.store.transaction() as s:
            conn = await s.connection()
            rows = (
                await conn.execute(
                    select(SPACES, MEMBERS.c.role)
                    .join(
                        MEMBERS, and_(MEMBERS.c.space_id == SPACES.c.id, MEMBERS.c.user_id == user)
                    )
                    .order_by(SPACES.c.created_at, SPACES.c.id)
                )
            ).all()
            counts = await member_counts(conn, [r.id for r in rows])
        return [space_record(r, r.role, counts.get(r.id, 0)) for r in rows]

    async def get(self, ctx: CallContext, space: str) -> SpaceDetail:
        user = require_user(ctx)
        async with self.store.transaction() as s:
            conn = await s.connection()
            row, role = await role_in(conn, space, user, lock=False)
            members = await self.handles.members(conn, self.store, space, user)
            pending = await conn.scalar(
                select(func.count()).select_from(SpaceInvite).where(SpaceInvite.space_id == space)
            )
        return SpaceDetail(
            space_record(row, role.value, len(members)), tuple(members), int(pending or 0)
        )

    async def invite(
        self, ctx: CallContext, space: str, user: str, email: str, role_name: str
    ) -> InviteResult:
        """Add the tenant's user ``user`` (now), or the verified ``email`` (at their sign-in)."""
        caller = require_user(ctx)
        role = parse_role(role_name or Role.EDITOR.value)
        if bool(user) == bool(email):
            raise InvalidArgument("user", "give either user (the app's user id) or email")
        identity = self.store.policy().spec.identity
        if email and not identity.invite_by_email:
            raise InvalidArgument("email", "this app invites by user id only")
        for field, text in (("user", user), ("email", email)):
            if len(text) > 1024 or (text and string_problem(text) is not None):
                raise InvalidArgument(field, "must be 1-1024 characters of valid text")
        async with self.store.core_transaction() as conn:
            _, my_role = await role_in(conn, space, caller, lock=True)
            require(my_role, Role.OWNER, "inviting members", space)
            if email:
                invitee = await self._user_with_email(conn, email)
                if invitee is None:
                    await self._wait_for(conn, space, email, role, caller)
                    await self.store.audit_now(
                        conn,
                        ctx,
                        "space.invite",
                        detail={"space": space, "role": role.value, "pending": True},
                    )
                    return InviteResult(None, pending=True)
            else:
                invitee = await self._user_named(conn, caller, user)
            await self._join(conn, space, invitee, role)
            await self.store.audit_now(
                conn,
                ctx,
                "space.invite",
                detail={"space": space, "role": role.value, "pending": False},
            )
            members = await self.handles.members(conn, self.store, space, caller)
        key = await self._handle(invitee)
        return InviteResult(next(m for m in members if m.member == key), pending=False)

    async def _handle(self, user: str) -> str:
        async with self.store.reading() as s:
            return self.handles.of(await self.handles.key(s), user)

    async def _user_with_email(self, conn: Conn, email: str) -> str | None:
        return (
            await conn.execute(
                select(UserProfile.user_id)
                .where(UserProfile.email_digest == claim_digest(email))
                .order_by(UserProfile.updated_at.desc())
                .limit(1)
            )
        ).scalar_one_or_none()

    async def _user_named(self, conn: Conn, caller: str, subject: str) -> str:
        """The internal id of the tenant's user ``subject`` (same issuer as the caller),
        linked now if they never signed in (their first sign-in finds it)."""
        issuer = (await conn.execute(select(User.issuer).where(User.id == caller))).scalar_one()
        found = (
            await conn.execute(
                select(User.id).where(User.issuer == issuer, User.subject == subject)
            )
        ).scalar_one_or_none()
        if found is not None:
            return str(found)
        user_id = uuid.uuid4().hex
        await conn.execute(
            insert(User).values(id=user_id, issuer=issuer, subject=subject, created_at=utcnow())
        )
        return user_id

    async def _wait_for(self, conn: Conn, space: str, email: str, role: Role, by: str) -> None:
        insert_ = pg_insert if self.store.is_postgres else sqlite_insert
        stmt = insert_(SpaceInvite).values(
            space_id=space,
            email_digest=claim_digest(email),
            role=role.value,
            invited_by=by,
            created_at=utcnow(),
        )
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[SpaceInvite.space_id, SpaceInvite.email_digest],
                set_={"role": stmt.excluded.role},
            )
        )

    async def set_role(
        self, ctx: CallContext, space: str, member: str, role_name: str
    ) -> MemberRecord:
        caller = require_user(ctx)
        role = parse_role(role_name)
        async with self.store.core_transaction() as conn:
            row, my_role = await role_in(conn, space, caller, lock=True)
            require(my_role, Role.OWNER, "changing roles", space)
            target = await self._member(conn, space, member)
            if target[1] is Role.OWNER and role is not Role.OWNER:
                await self._keep_an_owner(conn, row, target[0])
            await conn.execute(
                update(SpaceMember)
                .where(SpaceMember.space_id == space, SpaceMember.user_id == target[0])
                .values(role=role.value)
            )
            await self.store.audit_now(
                conn, ctx, "space.role", detail={"space": space, "role": role.value}
            )
            members = await self.handles.members(conn, self.store, space, caller)
        return next(m for m in members if m.member == member)

    async def _member(self, conn: Conn, space: str, member: str) -> tuple[str, Role]:
        found = await self.handles.user_of(conn, space, member)
        if found is None:
            raise InvalidArgument("member", f"no member {member} in space {space}; see spaces_get")
        return found

    async def _keep_an_owner(self, conn: Conn, space: SpaceRow, losing: str) -> None:
        """Refuse to leave the space without an owner; move its quota off ``losing``."""
        others = (
            (
                await conn.execute(
                    select(MEMBERS.c.user_id)
                    .where(
                        MEMBERS.c.space_id == space.id,
                        MEMBERS.c.role == Role.OWNER.value,
                        MEMBERS.c.user_id != losing,
                    )
                    .order_by(MEMBERS.c.joined_at)
                )
            )
            .scalars()
            .all()
        )
        if not others:
            raise InvalidArgument("role", "a space needs an owner: make another member owner first")
        if space.owner == losing:
            await move_quota(conn, self.store, space, others[0])

    async def remove(self, ctx: CallContext, space: str, member: str) -> str:
        caller = require_user(ctx)
        async with self.store.core_transaction() as conn:
            row, my_role = await role_in(conn, space, caller, lock=True)
            require(my_role, Role.OWNER, "removing members", space)
            user, role = await self._member(conn, space, member)
            if role is Role.OWNER:
                await self._keep_an_owner(conn, row, user)
                row = (await role_in(conn, space, caller, lock=True))[0]
            await conn.execute(
                delete(SpaceMember).where(
                    SpaceMember.space_id == space, SpaceMember.user_id == user
                )
            )
            await hand_over(conn, self.store, row, user)
            await self.store.audit_now(conn, ctx, "space.remove", detail={"space": space})
        return member

    async def leave(self, ctx: CallContext, space: str) -> bool:
        """The caller leaves; True when they were the last member and the space is gone."""
        caller = require_user(ctx)
        async with self.store.core_transaction() as conn:
            row, _ = await role_in(conn, space, caller, lock=True)
            await conn.execute(
                delete(SpaceMember).where(
                    SpaceMember.space_id == space, SpaceMember.user_id == caller
                )
            )
            kept = await hand_over(conn, self.store, row, caller)
            await self.store.audit_now(
                conn, ctx, "space.leave", detail={"space": space, "deleted": kept is None}
            )
        return kept is None

    async def signed_in(self, ctx: CallContext, user: UserId, claims: Claims) -> None:
        """Record what the token says of ``user``, accept invitations, join the org's space."""
        identity = self.store.policy().spec.identity
        name = claims.name[:200] if identity.name_claim and claims.name else None
        email = claim_digest(claims.email) if identity.email_claim and claims.email else None
        org = claim_digest(claims.org) if identity.org_claim and claims.org else None
        for attempt in range(2):
            try:
                async with self.store.core_transaction() as conn:
                    await self._profile(conn, user, name, email, org)
                    if email is not None and identity.invite_by_email:
                        await self._accept(conn, ctx, user, email)
                    if org is not None and identity.org_spaces:
                        await self._org_space(conn, ctx, user, org, claims.org)
                return
            except WriteRace:
                if attempt:
                    raise

    async def _profile(
        self, conn: Conn, user: str, name: str | None, email: str | None, org: str | None
    ) -> None:
        insert_ = pg_insert if self.store.is_postgres else sqlite_insert
        values = {
            "display_name": name,
            "email_digest": email,
            "org_digest": org,
            "updated_at": utcnow(),
        }
        stmt = insert_(UserProfile).values(user_id=user, **values)
        await conn.execute(
            stmt.on_conflict_do_update(index_elements=[UserProfile.user_id], set_=values)
        )

    async def _accept(self, conn: Conn, ctx: CallContext, user: str, email: str) -> None:
        invites = (
            await conn.execute(
                delete(SpaceInvite)
                .where(SpaceInvite.email_digest == email)
                .returning(SpaceInvite.space_id, SpaceInvite.role)
            )
        ).all()
        for space, role in invites:
            if await self._join(conn, space, user, Role(role)):
                await self.store.audit_now(
                    conn, ctx, "space.join", detail={"space": space, "by": "email"}
                )

    async def _org_space(
        self, conn: Conn, ctx: CallContext, user: str, org: str, org_name: str
    ) -> None:
        space = (
            await conn.execute(select(Space.id).where(Space.org_digest == org))
        ).scalar_one_or_none()
        if space is None:
            space = uuid.uuid4().hex
            await conn.execute(
                insert(Space).values(
                    id=space,
                    name=_check_name(org_name[:MAX_NAME]),
                    kind="org",
                    org_digest=org,
                    owner=user,
                    seq=0,
                    objects=0,
                    bytes=0,
                    created_at=utcnow(),
                )
            )
            await self._join(conn, space, user, Role.OWNER)
            await self.store.audit_now(
                conn, ctx, "space.create", detail={"space": space, "kind": "org"}
            )
        elif await self._join(conn, space, user, Role.EDITOR):
            await self.store.audit_now(
                conn, ctx, "space.join", detail={"space": space, "by": "org"}
            )

    async def support_listing(
        self, after_id: str, limit: int
    ) -> tuple[builtins.list[tuple[SpaceRecord, builtins.list[MemberRecord]]], bool]:
        """The tenant's spaces with their members' handles and roles: never contents or names."""
        if limit < 0:
            raise InvalidArgument("limit", "must not be negative")
        size = min(limit or 100, MAX_SUPPORT_PAGE)
        async with self.store.transaction() as s:
            conn = await s.connection()
            rows = (
                await conn.execute(
                    select(SPACES)
                    .where(SPACES.c.id > after_id)
                    .order_by(SPACES.c.id)
                    .limit(size + 1)
                )
            ).all()
            more = len(rows) > size
            out = []
            key = await self.handles.key(conn)
            for r in rows[:size]:
                members = (
                    await conn.execute(
                        select(MEMBERS.c.user_id, MEMBERS.c.role, MEMBERS.c.joined_at)
                        .where(MEMBERS.c.space_id == r.id)
                        .order_by(MEMBERS.c.joined_at)
                    )
                ).all()
                handles = [
                    MemberRecord(self.handles.of(key, m.user_id), "", m.role, m.joined_at)
                    for m in members
                ]
                # No name: a space's name is its members' words, as its contents are.
                out.append((replace(space_record(r, "", len(handles)), name=""), handles))
        return out, more


__all__ = ["Spaces", "claim_digest", "no_such_space"]
