"""What every service shares to reach the tenant's database.

``_store`` holds sessions, the policy, audit, quotas and key replays;
``_retries`` is the one skeleton every mutation runs in; ``_db`` is the
SQLAlchemy adapter (engines, sessions, translation of driver errors);
``_models`` the typed models (the schema itself lives in ``migrations``);
``_json`` the canonical JSON encoding and merge patch.

It knows nothing of gRPC and imports no service: ``objects``, ``people`` and
``housekeeping`` build on it, never the other way round.
"""
