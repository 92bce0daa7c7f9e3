"""Per-user data that is not an object, and the identities behind it.

``_people`` holds identity links, preferences, export and erasure;
``_pseudonyms`` keeps an erased user's audit trail, pseudonymised, inside the
erasure's transaction; ``_access`` records and lists access revocations.

It knows nothing of gRPC (the ``rpc`` package translates) and does not reach
into ``objects`` or ``housekeeping``; what it shares with them comes from
``storage``.
"""
