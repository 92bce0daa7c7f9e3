"""Third-party MCP clients against a real gateway: the MCP Inspector CLI, the conformance suite."""
