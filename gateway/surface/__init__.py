"""The MCP surface: the tools a tenant sees and how a call of one is answered.

``_lane`` answers a plain ``tools/call`` without a per-request MCP session,
``_mcp`` is the SDK's server for the rest; both end in ``_calls`` (a tool
call → its operation → a tool result). ``_tools`` builds a tenant's catalogue
from the rows of ``_tool_table``, which name their ``_operations``.

It reaches the worker only through ``gateway.forwarding`` and knows nothing of
the gate's stages: tokens, tenants and limits are settled before a call gets
here.
"""
