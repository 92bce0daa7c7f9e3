"""The baseline: a bare ``MCPServer`` doing the same storage work in-process.

Same tools as the gateway's ``items_save``/``items_get`` (a version bump and a
JSON copy per save), a dict for storage, no auth, no rate limits, no gRPC.
Served stateless with JSON responses, like the gateway.

Run: ``python -m bench._mcp_baseline --port 8100``.
"""

from __future__ import annotations

import argparse
import json
import uuid
from typing import Any

import uvicorn
from mcp.server import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

_store: dict[str, dict[str, Any]] = {}


def build() -> MCPServer:
    server = MCPServer("baseline", log_level="WARNING")

    @server.tool()
    def items_save(data: dict[str, Any], id: str = "") -> dict[str, Any]:
        """Create or replace one object."""
        key = id or uuid.uuid4().hex
        current = _store.get(key)
        obj = {
            "id": key,
            "version": (current["version"] + 1) if current else 1,
            "data": json.loads(json.dumps(data)),
        }
        _store[key] = obj
        return {"object": obj, "created": current is None, "replayed": False}

    @server.tool()
    def items_get(id: str) -> dict[str, Any]:
        """Read one object."""
        return {"object": _store[id]}

    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = build().streamable_http_app(
        streamable_http_path="/mcp",
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
