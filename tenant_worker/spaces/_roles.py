"""Roles in a space and what each may do. No I/O here."""

from __future__ import annotations

from enum import StrEnum

from tenant_worker._errors import InvalidArgument, PermissionDenied


class Role(StrEnum):
    OWNER = "owner"
    EDITOR = "editor"
    VIEWER = "viewer"


_RANK = {Role.VIEWER: 1, Role.EDITOR: 2, Role.OWNER: 3}


def parse_role(value: str, field: str = "role") -> Role:
    try:
        return Role(value)
    except ValueError as e:
        raise InvalidArgument(field, "must be owner, editor or viewer") from e


def at_least(needed: Role) -> list[Role]:
    """The roles that may do what needs ``needed`` (for a statement that checks the role itself)."""
    return [r for r in Role if _RANK[r] >= _RANK[needed]]


def require(role: Role, needed: Role, doing: str, space: str) -> None:
    """PermissionDenied unless ``role`` is at least ``needed`` for ``doing`` in ``space``."""
    if _RANK[role] < _RANK[needed]:
        article = "an" if role is Role.OWNER or role is Role.EDITOR else "a"
        raise PermissionDenied(
            needed.value,
            f"{doing} in space {space} needs the {needed.value} role (or higher); the user "
            f"is {article} {role.value} there. An owner of the space can change the role",
        )
