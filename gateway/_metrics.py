"""Prometheus metrics of one gateway app, in its own registry (no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.tool_calls = Counter(
            "stowage_gateway_tool_calls_total",
            "Tool calls by tenant, tool and outcome (ok or an error code).",
            ["tenant", "tool", "outcome"],
            registry=self.registry,
        )
        self.tool_seconds = Histogram(
            "stowage_gateway_tool_call_seconds",
            "Tool call latency inside the gateway, worker call included.",
            ["tenant", "tool"],
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "stowage_gateway_auth_failures_total",
            "Rejected requests by tenant and reason (missing, expired, audience, scope, ...).",
            ["tenant", "reason"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "stowage_gateway_rate_limited_total",
            "Tool calls rejected with 429, by tenant and bucket (user or tenant).",
            ["tenant", "bucket"],
            registry=self.registry,
        )
        self.upstream_errors = Counter(
            "stowage_gateway_upstream_errors_total",
            "Failed worker calls by tenant and gRPC status code.",
            ["tenant", "code"],
            registry=self.registry,
        )
        self.http_requests = Counter(
            "stowage_gateway_mcp_requests_total",
            "HTTP requests to MCP endpoints by tenant and status.",
            ["tenant", "status"],
            registry=self.registry,
        )
