"""The gate: one MCP request's stages, in the order ``_gate`` runs them.

``_front`` finds the tenant, ``_bearer`` authenticates, ``_admission`` applies
revocations and the launch stage, ``_body`` reads the body once, ``_tool_call``
recognises a ``tools/call``, ``_call_checks`` checks its scope and ``_limits``
its rate, ``_dispatch`` hands it on to the MCP surface; ``_challenges`` shapes
refusals and ``_asgi`` holds the plain ASGI pieces.

The only package here that speaks ASGI to the client. It decides and refuses;
it does not answer tool calls (``gateway.surface`` does), check tokens itself
(``gateway.auth``) or talk to a worker. Nothing below it imports it.
"""
