"""From a latency spike to its trace: the gateway's histogram carries the trace id as an
exemplar, and a real Prometheus (exemplar storage on) returns it from a query."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from stowage_testing.gateway import GatewayProcess, Issuer, post, rpc
from stowage_testing.tools import eventually
from stowage_testing.traces import Jaeger
from tests.monitoring.prometheus import Prometheus, Target, running_prometheus

pytestmark = pytest.mark.postgres

HISTOGRAM = "stowage_gateway_tool_call_seconds_bucket"


def exemplars(prometheus: Prometheus, query: str, since: float) -> list[dict[str, Any]]:
    reply = prometheus.client.get(
        f"{prometheus.url}/api/v1/query_exemplars",
        params={"query": query, "start": since, "end": time.time() + 1},
    )
    body = reply.json()
    assert body["status"] == "success", body
    return [e for series in body["data"] for e in series["exemplars"]]


def test_a_traced_calls_latency_carries_its_trace_id_as_an_exemplar_prometheus_returns(
    traced_gateway: GatewayProcess, jaeger: Jaeger, issuer: Issuer
) -> None:
    target = Target("gateway", f"127.0.0.1:{traced_gateway.port}", {})
    with running_prometheus([target], [], extra_args=("--enable-feature=exemplar-storage",)) as p:
        since = time.time() - 1
        token = issuer.token(traced_gateway.url("acme"), subject=f"ex-{uuid.uuid4().hex[:8]}")
        call = rpc("tools/call", {"name": "items_save", "arguments": {"id": "ex", "data": {}}})
        answer = post(traced_gateway.url("acme"), call, token)
        assert answer.status_code == 200
        trace_id = answer.headers["x-request-id"]
        query = f'{HISTOGRAM}{{tenant="acme",tool="items_save"}}'

        def found() -> list[dict[str, Any]]:
            return [e for e in exemplars(p, query, since) if e["labels"]["trace_id"] == trace_id]

        eventually(found, timeout=20, what=f"an exemplar with trace id {trace_id}")
        print(f"\nquery_exemplars {query}:\n{found()}")
        # The trace the exemplar names is in the trace backend.
        assert jaeger.wait_for(trace_id, bool)
