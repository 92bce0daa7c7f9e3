"""Prometheus metrics of one gateway app, in its own registry (no global state).

With several gateway processes (``--processes``) every process writes its
samples to the supervisor's ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client does
so by itself when that variable is set as it is imported), and the registry
that ``/metrics`` serves sums the samples of all of them there, so a scrape of
any process sees the whole gateway under the same names and labels.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram

from stowage.runtime.metrics import summed_registry


class Metrics:
    """The gateway's metrics; ``registry`` is what ``/metrics`` serves.

    ``multiprocess_dir``: where the processes of one supervising gateway write
    their samples (this one's included); ``registry`` then sums them instead of
    reading this process's metrics alone.
    """

    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        own = CollectorRegistry()
        self.tool_calls = Counter(
            "stowage_gateway_tool_calls_total",
            "Tool calls by tenant, tool and outcome (ok or an error code).",
            ["tenant", "tool", "outcome"],
            registry=own,
        )
        self.tool_seconds = Histogram(
            "stowage_gateway_tool_call_seconds",
            "Tool call latency inside the gateway, worker call included.",
            ["tenant", "tool"],
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=own,
        )
        self.auth_failures = Counter(
            "stowage_gateway_auth_failures_total",
            "Rejected requests by tenant and reason (missing, expired, audience, scope, ...).",
            ["tenant", "reason"],
            registry=own,
        )
        self.rate_limited = Counter(
            "stowage_gateway_rate_limited_total",
            "Tool calls rejected with 429, by tenant and bucket (user or tenant).",
            ["tenant", "bucket"],
            registry=own,
        )
        self.upstream_errors = Counter(
            "stowage_gateway_upstream_errors_total",
            "Failed worker calls by tenant and gRPC status code.",
            ["tenant", "code"],
            registry=own,
        )
        self.http_requests = Counter(
            "stowage_gateway_mcp_requests_total",
            "HTTP requests to MCP endpoints by tenant and status.",
            ["tenant", "status"],
            registry=own,
        )
        self.registry = own if multiprocess_dir is None else _summed(multiprocess_dir)


def _summed(multiprocess_dir: Path) -> CollectorRegistry:
    """A registry of every process's samples in ``multiprocess_dir``, summed."""
    return summed_registry(str(multiprocess_dir))
