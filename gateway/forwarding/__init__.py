"""Forwarding to the tenant's worker: the gateway's only gRPC client.

``_worker`` holds ``WorkerClient`` and ``WorkerPool``: one channel per worker,
deadlines, read retries, and gRPC statuses translated into the gateway's
errors.

The one place in the gateway that imports ``grpc`` or the stubs; it knows
nothing of MCP, HTTP, tokens or where tenants come from.
"""
