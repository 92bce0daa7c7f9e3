"""The gRPC surface: the one place where the worker speaks gRPC.

``_servicer`` turns call metadata into a call context, protobuf messages into
domain records (with ``_convert``) and outcomes into status codes, then calls
a service in ``objects``, ``people`` or ``housekeeping``.

It translates and counts; it does not decide. Validation, quotas, versions and
everything that touches the database belong to the services below it, and
nothing below it imports it (``.importlinter`` keeps both). Named ``rpc``, not
``grpc``: that is the third-party package's name.
"""
