"""Background work on the whole tenant: purging expired objects, upgrading schemas.

``_housekeeping`` runs on a schedule from the server, not on a user's call.
It knows nothing of gRPC and does not reach into ``objects`` or ``people``;
it works on the tables through ``storage``.
"""
