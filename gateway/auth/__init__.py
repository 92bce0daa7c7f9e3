"""Who is calling: token checks, revocations and the launch stage.

``_auth`` checks a bearer token (a JWT against ``_jwks``' keys, or RFC 7662
``_introspection``), ``_revocations`` keeps each tenant's revoked identities,
told by the ``_revocation_bus`` between replicas, and ``_access`` applies the
launch stage.

It answers questions and raises the gateway's errors; it shapes no HTTP
reply, knows nothing of ASGI, Starlette or the MCP SDK, and imports neither
the gate nor the MCP surface.
"""
