"""The PostgreSQL write statements: a whole Put or Delete in one round trip (no I/O here).

Each is one statement, run in autocommit, so it commits as it returns. It
locks the object (``FOR UPDATE``), reads the call's idempotency key and the
usage totals, and decides in ``gate.ok`` whether to write: no key used
before, the expected version holds, and the growth fits every quota. Only
then do its data-modifying parts run: the object, its audit row, the
tenant's usage slot, the user's usage row and the key with the result to
replay. All parts see one snapshot; they pass rows on through ``RETURNING``.
It writes a version that names no files (``files`` NULL); a Put that names
files runs in a transaction with their check (``_object_writes``).

Races end in one of two ways, both run again by the caller: an object
created by a concurrent call after this one looked (``ON CONFLICT DO
NOTHING`` leaves ``written`` empty while ``gate.ok`` holds), or a key
remembered by a concurrent call with the same key (a unique violation).

The statement returns what it saw (``found``, the totals, the key's first
use), so a refusal is worked out in Python from exactly that. Parameters are
cast once, in ``p``, so each has one type wherever it is used.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from tenant_worker.storage._db import PUT_VALUE_PARAMS, Prepared, placeholders

#: The parameters both statements take, in order, with their types.
_TARGET = (
    ("owner", "varchar"),
    ("collection", "varchar"),
    ("object_id", "varchar"),
    ("key", "varchar"),
    ("request_hash", "varchar"),
    ("now", "timestamptz"),
    ("retained_after", "timestamptz"),
    ("expected", "bigint"),
    ("correlation_id", "varchar"),
    ("slot", "integer"),
)
_PUT_PARAMS, _PUT_P = placeholders(_TARGET + PUT_VALUE_PARAMS)
_DELETE_PARAMS, _DELETE_P = placeholders(_TARGET)


_FOUND = """
found AS (
    SELECT o.collection, o.object_id, o.data, o.schema_version, o.version, o.size_bytes,
           o.created_at, o.updated_at, o.expires_at, o.correlation_id,
           (o.expires_at IS NULL OR o.expires_at > p.now)
           AND (p.retained_after IS NULL OR o.updated_at > p.retained_after) AS live
    FROM objects AS o, p
    WHERE o.owner = p.owner AND o.collection = p.collection AND o.object_id = p.object_id
    FOR UPDATE OF o
),
first_use AS (
    SELECT k.operation, k.request_hash, k.response, k.created_at
    FROM idempotency_keys AS k, p
    WHERE k.owner = p.owner AND k.key = p.key
)"""

#: What every statement returns beside its own outcome: the object as found
#: (its data only when the write was refused: a conflict returns it), and the
#: key's first use.
_SEEN = """
       coalesce(found.live, false) AS live,
       found.collection, found.object_id,
       CASE WHEN gate.ok THEN NULL ELSE found.data END AS data,
       found.schema_version, found.version, found.size_bytes, found.created_at,
       found.updated_at, found.expires_at, found.correlation_id,
       first_use.operation AS first_operation, first_use.request_hash AS first_request_hash,
       first_use.response AS first_response, first_use.created_at AS first_created_at"""

_PUT = (
    "WITH"
    + _PUT_P
    + ","
    + _FOUND
    + """,
state AS (
    SELECT found.version IS NOT NULL AS present,
           coalesce(found.live, false) AS live,
           found.version AS found_version,
           CASE WHEN found.version IS NULL THEN 1 ELSE 0 END AS d_objects,
           p.size - coalesce(found.size_bytes, 0) AS d_bytes,
           tenant.objects AS tenant_objects,
           tenant.bytes AS tenant_bytes,
           coalesce(mine.objects, 0) AS user_objects,
           coalesce(mine.bytes, 0) AS user_bytes,
           EXISTS (SELECT FROM first_use) AS keyed
    FROM p
    CROSS JOIN (SELECT coalesce(sum(objects), 0) AS objects,
                       coalesce(sum(bytes), 0) AS bytes FROM usage) AS tenant
    LEFT JOIN found ON true
    LEFT JOIN user_usage AS mine ON mine.owner = p.owner
),
gate AS (
    SELECT state.*,
           NOT keyed
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
    INSERT INTO objects (owner, collection, object_id, data, schema_version, version,
                         size_bytes, created_at, updated_at, expires_at, correlation_id)
    SELECT p.owner, p.collection, p.object_id, p.data, p.schema_version, 1,
           p.size, p.now, p.now, p.expires_at, p.correlation_id
    FROM gate, p
    WHERE gate.ok AND NOT gate.present
    ON CONFLICT DO NOTHING
    RETURNING version, created_at
),
replaced AS (
    UPDATE objects AS o
    SET data = p.data,
        schema_version = p.schema_version,
        version = CASE WHEN gate.live THEN o.version + 1 ELSE 1 END,
        created_at = CASE WHEN gate.live THEN o.created_at ELSE p.now END,
        size_bytes = p.size,
        updated_at = p.now,
        expires_at = p.expires_at,
        correlation_id = p.correlation_id,
        files = NULL
    FROM gate, p
    WHERE gate.ok AND gate.present
      AND o.owner = p.owner AND o.collection = p.collection AND o.object_id = p.object_id
    RETURNING o.version, o.created_at
),
written AS (
    SELECT version, created_at FROM created
    UNION ALL
    SELECT version, created_at FROM replaced
),
audited AS (
    INSERT INTO audit_events (at, user_id, action, collection, object_id, version,
                              correlation_id)
    SELECT p.now, p.owner,
           CASE WHEN written.version = 1 THEN 'object.create' ELSE 'object.replace' END,
           p.collection, p.object_id, written.version, p.correlation_id
    FROM written, p
),
charged AS (
    UPDATE usage
    SET objects = usage.objects + gate.d_objects, bytes = usage.bytes + gate.d_bytes
    FROM gate, written, p
    WHERE usage.id = p.slot AND (gate.d_objects <> 0 OR gate.d_bytes <> 0)
),
charged_user AS (
    INSERT INTO user_usage AS u (owner, objects, bytes)
    SELECT p.owner, gate.d_objects, gate.d_bytes
    FROM gate, written, p
    WHERE gate.d_objects <> 0 OR gate.d_bytes <> 0
    ON CONFLICT (owner) DO UPDATE
    SET objects = u.objects + EXCLUDED.objects, bytes = u.bytes + EXCLUDED.bytes
),
remembered AS (
    INSERT INTO idempotency_keys (owner, key, operation, request_hash, response, created_at)
    SELECT p.owner, p.key, 'put', p.request_hash,
           convert_to(jsonb_build_object(
               'object', p.record || jsonb_build_object('version', written.version,
                                                        'created_at', written.created_at),
               'created', written.version = 1)::text, 'UTF8'),
           p.now
    FROM written, p
    WHERE p.key <> ''
)
SELECT gate.ok,
       gate.tenant_objects, gate.tenant_bytes, gate.user_objects, gate.user_bytes,
       written.version AS written_version, written.created_at AS written_created_at,"""
    + _SEEN
    + """
FROM gate
LEFT JOIN written ON true
LEFT JOIN found ON true
LEFT JOIN first_use ON true
"""
)

_DELETE = (
    "WITH"
    + _DELETE_P
    + ","
    + _FOUND
    + """,
gate AS (
    SELECT NOT EXISTS (SELECT FROM first_use)
           AND coalesce(found.live, false)
           AND (p.expected IS NULL OR found.version = p.expected) AS ok
    FROM p
    LEFT JOIN found ON true
),
removed AS (
    DELETE FROM objects AS o
    USING gate, p
    WHERE gate.ok
      AND o.owner = p.owner AND o.collection = p.collection AND o.object_id = p.object_id
    RETURNING o.version, o.size_bytes
),
audited AS (
    INSERT INTO audit_events (at, user_id, action, collection, object_id, version,
                              correlation_id)
    SELECT p.now, p.owner, 'object.delete', p.collection, p.object_id, removed.version,
           p.correlation_id
    FROM removed, p
),
charged AS (
    UPDATE usage
    SET objects = usage.objects - 1, bytes = usage.bytes - removed.size_bytes
    FROM removed, p
    WHERE usage.id = p.slot
),
charged_user AS (
    INSERT INTO user_usage AS u (owner, objects, bytes)
    SELECT p.owner, -1, -removed.size_bytes
    FROM removed, p
    ON CONFLICT (owner) DO UPDATE
    SET objects = u.objects + EXCLUDED.objects, bytes = u.bytes + EXCLUDED.bytes
),
remembered AS (
    INSERT INTO idempotency_keys (owner, key, operation, request_hash, response, created_at)
    SELECT p.owner, p.key, 'delete', p.request_hash,
           convert_to(jsonb_build_object('collection', p.collection, 'id', p.object_id,
                                         'version', removed.version)::text, 'UTF8'),
           p.now
    FROM removed, p
    WHERE p.key <> ''
)
SELECT gate.ok, removed.version AS removed_version,"""
    + _SEEN
    + """
FROM gate
LEFT JOIN removed ON true
LEFT JOIN found ON true
LEFT JOIN first_use ON true
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
    live: bool
    collection: Any
    object_id: Any
    data: Any
    schema_version: Any
    version: Any
    size_bytes: Any
    created_at: Any
    updated_at: Any
    expires_at: Any
    correlation_id: Any
    first_operation: Any
    first_request_hash: Any
    first_response: Any
    first_created_at: Any


class DeleteRow(NamedTuple):
    """The row of :data:`DELETE`: its columns in order (as :class:`PutRow`)."""

    ok: bool
    removed_version: Any
    live: bool
    collection: Any
    object_id: Any
    data: Any
    schema_version: Any
    version: Any
    size_bytes: Any
    created_at: Any
    updated_at: Any
    expires_at: Any
    correlation_id: Any
    first_operation: Any
    first_request_hash: Any
    first_response: Any
    first_created_at: Any


#: A Put: parameters as in ``_object_writes._put_params``.
PUT = Prepared(_PUT, _PUT_PARAMS, PutRow._make)
#: A Delete: parameters as in ``_object_writes._target_params``.
DELETE = Prepared(_DELETE, _DELETE_PARAMS, DeleteRow._make)
