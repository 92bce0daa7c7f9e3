"""The PostgreSQL Put and Delete in a space: each a whole write in one statement (no I/O here).

Like a personal Put (``tenant_worker.objects._pg_writes``), it runs in
autocommit, so it commits as it returns, and its parts pass rows on through
``RETURNING``. In the order the rows depend on one another:

- ``access``: the space and the caller's membership, locked ``FOR UPDATE``
  (as ``_access.role_in(lock=True)``). Every write in the space takes this lock
  first, so it serialises them: a statement that waited for it reads the
  locked rows as they are now, and its change number follows the last one
  committed;
- ``found``: the object, locked, read only when the role may write (so the
  space is always locked before the object);
- ``gate.ok``: a member whose role may write, a key not used before, the
  expected version holds, the growth fits the tenant's quotas and the per-user
  quotas of the space's owner;
- only then the writes: the object, the space's ``seq`` and size (``bumped``),
  the change row numbered by the new ``seq``, the audit row, the usage slot,
  the owner's ``user_usage`` row, the key with the result to replay.

A Delete is the same with ``gate.ok`` for a live object at the expected
version, and no quota to check (it only shrinks).

Reads other than the locked rows (the key, the usage totals) see the
statement's snapshot, as in a personal Put: a key remembered meanwhile by a
concurrent call is a unique violation (``WriteRace``: run again, then replay
it); a quota may be overshot by the writes in flight, never by more.

The statement returns what it saw (the role, ``found``, the totals, the key's
first use), the authors' user ids and the display names the tenant shows, so
the result, or a refusal, is worked out in Python from exactly that (authors
as other members see them: ``_access.Handles.author``). The caller's own
handle comes in as a parameter (``me``). Only the key row, which remembers
the result to replay, needs another member's handle in the statement: for a
keyed Put that replaces an object someone else created it is computed here
as ``Handles`` does (HMAC-SHA256 of the user id under the database key, given
as its padded inner and outer keys: see ``Handles.pads``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from tenant_worker.spaces._access import (
    FORMER_MEMBER,
    HANDLE_CONTEXT,
    HANDLE_HEX,
    HANDLE_PREFIX,
    PSEUDONYM_PREFIX,
    PSEUDONYM_SHOWN,
)
from tenant_worker.storage._db import PUT_VALUE_PARAMS, Prepared, placeholders


def _literal(value: str | bytes) -> str:
    """A constant of ``_access`` as an SQL literal (none holds a quote or a backslash)."""
    if isinstance(value, bytes):
        return f"'\\x{value.hex()}'::bytea"
    if "'" in value or "\\" in value:
        raise ValueError(f"not a plain constant: {value!r}")
    return f"'{value}'"


def _name(user: str) -> str:
    """SQL for the display name the tenant shows for a user id (``p.names``), or NULL."""
    return (
        "CASE WHEN p.names THEN (SELECT nullif(pr.display_name, '') FROM user_profiles AS pr "
        f"WHERE pr.user_id = {user}) END"
    )


def _handle(user: str) -> str:
    """SQL for ``Handles.of(key, user)``: HMAC-SHA256 from the padded keys, as hex, cut."""
    message = f"{_literal(HANDLE_CONTEXT)} || convert_to({user}, 'UTF8')"
    digest = f"sha256(p.opad || sha256(p.ipad || {message}))"
    return f"{_literal(HANDLE_PREFIX)} || left(encode({digest}, 'hex'), {HANDLE_HEX})"


def _author(user: str) -> str:
    """SQL for ``Handles.author``: jsonb [member, name] of a user id, pseudonym or NULL."""
    handle = _handle(user)
    return f"""CASE WHEN {user} IS NULL THEN NULL
                WHEN left({user}, 1) = {_literal(PSEUDONYM_PREFIX)}
                THEN jsonb_build_array(left({user}, {PSEUDONYM_SHOWN}), {_literal(FORMER_MEMBER)})
                ELSE jsonb_build_array({handle}, coalesce({_name(user)}, {handle})) END"""


#: The parameters both statements take, in order, with their types.
_TARGET = (
    ("space", "varchar"),
    ("user_id", "varchar"),
    ("writers", "varchar[]"),
    ("collection", "varchar"),
    ("object_id", "varchar"),
    ("operation", "varchar"),
    ("key", "varchar"),
    ("request_hash", "varchar"),
    ("now", "timestamptz"),
    ("retained_after", "timestamptz"),
    ("expected", "bigint"),
    ("correlation_id", "varchar"),
    ("slot", "integer"),
    ("detail", "jsonb"),
    ("names", "boolean"),
)
#: A Put's parameters after those.
_PUT_ONLY = (
    ("me", "varchar"),
    ("ipad", "bytea"),
    ("opad", "bytea"),
    *PUT_VALUE_PARAMS,
)
_PUT_PARAMS, _PUT_P = placeholders(_TARGET + _PUT_ONLY)
_DELETE_PARAMS, _DELETE_P = placeholders(_TARGET)


#: The space and the membership (locked first), the object (locked, for a role that may
#: write), the key's first use.
_LOCKED = """
access AS (
    SELECT s.id, s.owner, m.role
    FROM spaces AS s
    JOIN space_members AS m ON m.space_id = s.id
    CROSS JOIN p
    WHERE s.id = p.space AND m.user_id = p.user_id
    FOR UPDATE OF s, m
),
found AS (
    SELECT o.data, o.schema_version, o.version, o.size_bytes, o.created_at, o.updated_at,
           o.expires_at, o.correlation_id, o.created_by, o.updated_by,
           (o.expires_at IS NULL OR o.expires_at > p.now)
           AND (p.retained_after IS NULL OR o.updated_at > p.retained_after) AS live
    FROM space_objects AS o, p, access
    WHERE o.space_id = p.space AND o.collection = p.collection AND o.object_id = p.object_id
      AND o.space_id = access.id AND access.role = ANY (p.writers)
    FOR UPDATE OF o
),
first_use AS (
    SELECT k.operation, k.request_hash, k.response, k.created_at
    FROM idempotency_keys AS k, p
    WHERE k.owner = p.user_id AND k.key = p.key
)"""

#: What both statements return beside their own outcome: the role, the object as found
#: (its data only when the write was refused: a conflict returns it), its authors' ids and,
#: for a refusal, their names; the key's first use.
_SEEN = f"""
       access.role,
       coalesce(found.live, false) AS live,
       CASE WHEN gate.ok THEN NULL ELSE found.data END AS data,
       found.schema_version, found.version, found.size_bytes, found.created_at,
       found.updated_at, found.expires_at, found.correlation_id,
       found.created_by AS found_created_by, found.updated_by AS found_updated_by,
       CASE WHEN NOT gate.ok THEN {_name("found.created_by")} END AS found_created_by_name,
       CASE WHEN NOT gate.ok THEN {_name("found.updated_by")} END AS found_updated_by_name,
       first_use.operation AS first_operation, first_use.request_hash AS first_request_hash,
       first_use.response AS first_response, first_use.created_at AS first_created_at
FROM p
CROSS JOIN gate
LEFT JOIN access ON true
LEFT JOIN found ON true
LEFT JOIN first_use ON true"""

_PUT = (
    "WITH"
    + _PUT_P
    + ","
    + _LOCKED
    + """,
state AS (
    SELECT access.owner,
           access.role,
           coalesce(access.role = ANY (p.writers), false) AS may_write,
           found.version IS NOT NULL AS present,
           coalesce(found.live, false) AS live,
           found.version AS found_version,
           CASE WHEN found.version IS NULL THEN 1 ELSE 0 END AS d_objects,
           p.size - coalesce(found.size_bytes, 0) AS d_bytes,
           tenant.objects AS tenant_objects,
           tenant.bytes AS tenant_bytes,
           coalesce(theirs.objects, 0) AS user_objects,
           coalesce(theirs.bytes, 0) AS user_bytes,
           EXISTS (SELECT FROM first_use) AS keyed
    FROM p
    CROSS JOIN (SELECT coalesce(sum(objects), 0) AS objects,
                       coalesce(sum(bytes), 0) AS bytes FROM usage) AS tenant
    LEFT JOIN access ON true
    LEFT JOIN found ON true
    LEFT JOIN user_usage AS theirs ON theirs.owner = access.owner
),
gate AS (
    SELECT state.*,
           may_write AND NOT keyed
           AND CASE WHEN p.expected IS NULL THEN true
                    WHEN p.expected = 0 THEN NOT live
                    ELSE live AND found_version = p.expected END
           AND (d_objects <= 0 OR tenant_objects + d_objects <= p.max_objects)
           AND (d_bytes <= 0 OR tenant_bytes + d_bytes <= p.max_bytes)
           AND (d_objects <= 0 OR p.user_max_objects IS NULL
                OR user_objects + d_objects <= p.user_max_objects)
           AND (d_bytes <= 0 OR p.user_max_bytes IS NULL
                OR user_bytes + d_bytes <= p.user_max_bytes) AS ok
    FROM state, p
),
created AS (
    INSERT INTO space_objects (space_id, collection, object_id, data, schema_version, version,
                               size_bytes, created_at, updated_at, expires_at, correlation_id,
                               created_by, updated_by)
    SELECT p.space, p.collection, p.object_id, p.data, p.schema_version, 1,
           p.size, p.now, p.now, p.expires_at, p.correlation_id, p.user_id, p.user_id
    FROM gate, p
    WHERE gate.ok AND NOT gate.present
    ON CONFLICT DO NOTHING
    RETURNING version, created_at, created_by
),
replaced AS (
    UPDATE space_objects AS o
    SET data = p.data,
        schema_version = p.schema_version,
        version = CASE WHEN gate.live THEN o.version + 1 ELSE 1 END,
        created_at = CASE WHEN gate.live THEN o.created_at ELSE p.now END,
        created_by = CASE WHEN gate.live THEN o.created_by ELSE p.user_id END,
        size_bytes = p.size,
        updated_at = p.now,
        expires_at = p.expires_at,
        correlation_id = p.correlation_id,
        updated_by = p.user_id,
        files = NULL
    FROM gate, p
    WHERE gate.ok AND gate.present
      AND o.space_id = p.space AND o.collection = p.collection AND o.object_id = p.object_id
    RETURNING o.version, o.created_at, o.created_by
),
written AS (
    SELECT version, created_at, created_by FROM created
    UNION ALL
    SELECT version, created_at, created_by FROM replaced
),
bumped AS (
    UPDATE spaces AS s
    SET seq = s.seq + 1, objects = s.objects + gate.d_objects, bytes = s.bytes + gate.d_bytes
    FROM gate, written, p
    WHERE s.id = p.space
    RETURNING s.seq
),
changed AS (
    INSERT INTO space_changes (space_id, seq, collection, object_id, version, action, author,
                               at, correlation_id)
    SELECT p.space, bumped.seq, p.collection, p.object_id, written.version, 'put', p.user_id,
           p.now, p.correlation_id
    FROM bumped, written, p
),
audited AS (
    INSERT INTO audit_events (at, user_id, action, collection, object_id, version,
                              correlation_id, detail)
    SELECT p.now, p.user_id,
           CASE WHEN written.version = 1 THEN 'space.object.create'
                ELSE 'space.object.replace' END,
           p.collection, p.object_id, written.version, p.correlation_id, p.detail
    FROM written, p
),
charged AS (
    UPDATE usage
    SET objects = usage.objects + gate.d_objects, bytes = usage.bytes + gate.d_bytes
    FROM gate, written, p
    WHERE usage.id = p.slot AND (gate.d_objects <> 0 OR gate.d_bytes <> 0)
),
charged_owner AS (
    INSERT INTO user_usage AS u (owner, objects, bytes)
    SELECT gate.owner, gate.d_objects, gate.d_bytes
    FROM gate, written
    WHERE gate.d_objects <> 0 OR gate.d_bytes <> 0
    ON CONFLICT (owner) DO UPDATE
    SET objects = u.objects + EXCLUDED.objects, bytes = u.bytes + EXCLUDED.bytes
),
"""
    + f"""
me AS (
    SELECT {_name("p.user_id")} AS name FROM p
),
remembered AS (
    INSERT INTO idempotency_keys (owner, key, operation, request_hash, response, created_at)
    SELECT p.user_id, p.key, p.operation, p.request_hash,
           convert_to(jsonb_build_object(
               'space', p.space,
               'object', p.record || jsonb_build_object('version', written.version,
                                                        'created_at', written.created_at),
               'created_by', CASE WHEN written.created_by = p.user_id
                                  THEN jsonb_build_array(p.me, coalesce(me.name, p.me))
                                  ELSE {_author("written.created_by")} END,
               'updated_by', jsonb_build_array(p.me, coalesce(me.name, p.me)),
               'created', written.version = 1)::text, 'UTF8'),
           p.now
    FROM written, me, p
    WHERE p.key <> ''
)
SELECT gate.ok,
       gate.tenant_objects, gate.tenant_bytes, gate.user_objects, gate.user_bytes,
       written.version AS written_version, written.created_at AS written_created_at,
       written.created_by AS written_created_by,
       CASE WHEN written.created_by <> p.user_id THEN {_name("written.created_by")} END
           AS written_created_by_name,
       CASE WHEN written.version IS NOT NULL THEN {_name("p.user_id")} END AS me_name,"""
    + _SEEN
    + """
LEFT JOIN written ON true
"""
)

_DELETE = (
    "WITH"
    + _DELETE_P
    + ","
    + _LOCKED
    + """,
gate AS (
    SELECT coalesce(access.role = ANY (p.writers), false)
           AND NOT EXISTS (SELECT FROM first_use)
           AND coalesce(found.live, false)
           AND (p.expected IS NULL OR found.version = p.expected) AS ok
    FROM p
    LEFT JOIN access ON true
    LEFT JOIN found ON true
),
removed AS (
    DELETE FROM space_objects AS o
    USING gate, p
    WHERE gate.ok
      AND o.space_id = p.space AND o.collection = p.collection AND o.object_id = p.object_id
    RETURNING o.version, o.size_bytes
),
bumped AS (
    UPDATE spaces AS s
    SET seq = s.seq + 1, objects = s.objects - 1, bytes = s.bytes - removed.size_bytes
    FROM removed, p
    WHERE s.id = p.space
    RETURNING s.seq
),
changed AS (
    INSERT INTO space_changes (space_id, seq, collection, object_id, version, action, author,
                               at, correlation_id)
    SELECT p.space, bumped.seq, p.collection, p.object_id, removed.version, 'delete',
           p.user_id, p.now, p.correlation_id
    FROM bumped, removed, p
),
audited AS (
    INSERT INTO audit_events (at, user_id, action, collection, object_id, version,
                              correlation_id, detail)
    SELECT p.now, p.user_id, 'space.object.delete', p.collection, p.object_id,
           removed.version, p.correlation_id, p.detail
    FROM removed, p
),
charged AS (
    UPDATE usage
    SET objects = usage.objects - 1, bytes = usage.bytes - removed.size_bytes
    FROM removed, p
    WHERE usage.id = p.slot
),
charged_owner AS (
    INSERT INTO user_usage AS u (owner, objects, bytes)
    SELECT access.owner, -1, -removed.size_bytes
    FROM removed, access
    ON CONFLICT (owner) DO UPDATE
    SET objects = u.objects + EXCLUDED.objects, bytes = u.bytes + EXCLUDED.bytes
),
remembered AS (
    INSERT INTO idempotency_keys (owner, key, operation, request_hash, response, created_at)
    SELECT p.user_id, p.key, p.operation, p.request_hash,
           convert_to(jsonb_build_object('collection', p.collection, 'id', p.object_id,
                                         'version', removed.version)::text, 'UTF8'),
           p.now
    FROM removed, p
    WHERE p.key <> ''
)
SELECT removed.version AS removed_version,"""
    + _SEEN
    + """
LEFT JOIN removed ON true
"""
)


class PutRow(NamedTuple):
    """The row of :data:`PUT`: its columns in order (those of an outer join are NULL when
    there was no row to join)."""

    ok: bool
    tenant_objects: int
    tenant_bytes: int
    user_objects: int
    user_bytes: int
    written_version: Any
    written_created_at: Any
    written_created_by: Any
    written_created_by_name: Any
    me_name: Any
    role: Any
    live: bool
    data: Any
    schema_version: Any
    version: Any
    size_bytes: Any
    created_at: Any
    updated_at: Any
    expires_at: Any
    correlation_id: Any
    found_created_by: Any
    found_updated_by: Any
    found_created_by_name: Any
    found_updated_by_name: Any
    first_operation: Any
    first_request_hash: Any
    first_response: Any
    first_created_at: Any


class DeleteRow(NamedTuple):
    """The row of :data:`DELETE`: its columns in order (as :class:`PutRow`)."""

    removed_version: Any
    role: Any
    live: bool
    data: Any
    schema_version: Any
    version: Any
    size_bytes: Any
    created_at: Any
    updated_at: Any
    expires_at: Any
    correlation_id: Any
    found_created_by: Any
    found_updated_by: Any
    found_created_by_name: Any
    found_updated_by_name: Any
    first_operation: Any
    first_request_hash: Any
    first_response: Any
    first_created_at: Any


#: What either statement saw.
SeenRow = PutRow | DeleteRow
#: A Put in a space: parameters as in ``_write_plan.put_params``.
PUT = Prepared(_PUT, _PUT_PARAMS, PutRow._make)
#: A Delete in a space: parameters as in ``_write_plan.target_params``.
DELETE = Prepared(_DELETE, _DELETE_PARAMS, DeleteRow._make)
