"""An erased user's audit trail, kept but pseudonymised. Runs inside the erasure's transaction.

The audit trail outlives erasure: that a user's objects were created, changed
and deleted, when, in which collection, at which version and under which
correlation id stays provable. What the user (or the model acting for them)
chose does not stay: object ids can be personal (``alice@example.com``,
``passport-scan-2024``), so each becomes ``~`` + HMAC-SHA256 of the id under the
database's audit key (made by migration 0002). An operator holding that key
can still match one object's events; nobody can read the id back. Real object
ids start with a letter or digit, so a pseudonym never collides with one.
"""

from __future__ import annotations

import hashlib
import hmac

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenant_worker.storage._models import AUDIT_KEY, AuditEvent, Key

PREFIX = "~"


def pseudonym(key: bytes, object_id: str) -> str:
    """The stable pseudonym of ``object_id`` under ``key`` (41 characters)."""
    return PREFIX + hmac.new(key, object_id.encode(), hashlib.sha256).hexdigest()[:40]


async def pseudonymise_audit(s: AsyncSession, owner: str) -> int:
    """Replace the object ids in ``owner``'s audit rows by pseudonyms; return how many ids."""
    key = await s.scalar(select(Key.secret).where(Key.name == AUDIT_KEY))
    if key is None:
        raise RuntimeError("the audit key is missing: run `stowage worker migrate`")
    ids = (
        await s.scalars(
            select(AuditEvent.object_id)
            .where(AuditEvent.user_id == owner, AuditEvent.object_id.is_not(None))
            .distinct()
        )
    ).all()
    changed = 0
    for object_id in ids:
        if object_id is None or object_id.startswith(PREFIX):
            continue
        await s.execute(
            update(AuditEvent)
            .where(AuditEvent.user_id == owner, AuditEvent.object_id == object_id)
            .values(object_id=pseudonym(key, object_id))
        )
        changed += 1
    return changed
