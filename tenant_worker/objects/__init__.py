"""Versioned objects: create, replace, get, list and delete for one user.

``_objects`` is the service; ``_object_writes`` plans and carries out one Put
or Delete (version check, write, audit, quotas), on PostgreSQL as one
statement from ``_pg_writes``; ``_cursor`` makes and reads opaque list cursors.

It knows nothing of gRPC (the ``rpc`` package translates) and does not reach
into ``people`` or ``housekeeping``; what it shares with them (sessions,
audit, quotas, retries) comes from ``storage``.
"""
