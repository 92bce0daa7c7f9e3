"""Shared spaces: several users on the same objects, with roles, conflicts that say who, a feed.

The worker is the authority: every read and write checks the caller's
membership and role in the same transaction (or the same statement) as the
data, so a gateway bug cannot leak a space. A space the caller is not a member
of is ``NotFound`` whether it exists or not; a role too low is
``PermissionDenied`` naming the role needed.

Layers (``.importlinter``): ``_members`` (spaces and their members) and
``_space_objects`` (objects: reads, change feed, export) and ``_erasure`` (what
an erasure does in spaces) → ``_space_writes`` (put, delete, purge) →
``_write_plan`` (a write worked out, its statement's parameters, its refusals;
no I/O) → ``_access`` (membership and role checks, authors, quota moves) →
``_roles`` | ``_cursor`` | ``_pg_space_writes`` (values and SQL, no I/O). No
gRPC here.

The files of a space (``tenant_worker.files``) check access with ``role_in`` and
``require``; a space that goes (its last member left) takes its files with it
(``_access.hand_over``).
"""

from tenant_worker.spaces._access import Handles, SpaceRow, role_in
from tenant_worker.spaces._erasure import SpaceErasure
from tenant_worker.spaces._members import Spaces
from tenant_worker.spaces._roles import Role, require
from tenant_worker.spaces._space_objects import SpaceObjects
from tenant_worker.spaces._write_plan import SPACE_OWNER

__all__ = [
    "SPACE_OWNER",
    "Handles",
    "Role",
    "SpaceErasure",
    "SpaceObjects",
    "SpaceRow",
    "Spaces",
    "require",
    "role_in",
]
