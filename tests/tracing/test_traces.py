"""One tool call, followed in a real trace backend from the gateway's request to the SQL.

A real gateway and worker on PostgreSQL send their spans to a real Jaeger
(OTLP); each test reads the trace back from Jaeger's query API, as an on-call
engineer would, by the correlation id the answer carried.
"""

from __future__ import annotations

import statistics
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy

from stowage_testing.gateway import (
    WORKER_POLICY,
    GatewayProcess,
    Issuer,
    post,
    rpc,
    running_gateway,
    tenant_entry,
    tool_error,
)
from stowage_testing.tools import free_port
from stowage_testing.traces import Jaeger, TracedSpan, span_tree
from stowage_testing.worker import WorkerProcess, running_worker

pytestmark = pytest.mark.postgres

ROOT = "POST /t/{tenant}/mcp"
PUT = "stowage.v1.TenantWorker/PutObject"


def save(object_id: str, secret: str) -> dict[str, object]:
    arguments = {"id": object_id, "data": {"note": secret}}
    return rpc("tools/call", {"name": "items_save", "arguments": arguments})


def by_name(spans: list[TracedSpan], name: str, service: str | None = None) -> list[TracedSpan]:
    return [s for s in spans if s.name == name and (service is None or s.service == service)]


def one(spans: list[TracedSpan], name: str, service: str) -> TracedSpan:
    found = by_name(spans, name, service)
    assert len(found) == 1, f"{name} in {service}:\n{span_tree(spans)}"
    return found[0]


def sql_under(spans: list[TracedSpan], parent: TracedSpan) -> list[TracedSpan]:
    return [s for s in spans if s.parent_id == parent.span_id and "db.query.text" in s.tags]


def complete(spans: list[TracedSpan]) -> bool:
    """The gateway's root and the worker's PutObject with its SQL have all arrived."""
    servers = [s for s in by_name(spans, PUT, "stowage-worker")]
    return bool(by_name(spans, ROOT)) and any(sql_under(spans, s) for s in servers)


@pytest.fixture
def token(traced_gateway: GatewayProcess, issuer: Issuer) -> str:
    return issuer.token(traced_gateway.url("acme"), subject=f"tracer-{uuid.uuid4().hex[:8]}")


def test_a_tool_call_is_one_trace_from_the_gateway_request_to_the_worker_sql(
    traced_gateway: GatewayProcess, traced_worker: WorkerProcess, jaeger: Jaeger, token: str
) -> None:
    secret = f"user-data-{uuid.uuid4().hex}"
    answer = post(traced_gateway.url("acme"), save("traced-1", secret), token)
    assert answer.status_code == 200 and answer.json()["result"]["isError"] is False
    trace_id = answer.headers["x-request-id"]  # the correlation id is the trace id

    spans = jaeger.wait_for(trace_id, complete)
    print(f"\ntrace {trace_id}\n{span_tree(spans)}")

    root = one(spans, ROOT, "stowage-gateway")
    assert root.parent_id is None
    assert root.tags["stowage.tenant"] == "acme" and root.tags["http.response.status_code"] == 200
    for stage in ("gateway.authenticate", "gateway.check_revocations", "gateway.rate_limit"):
        assert one(spans, stage, "stowage-gateway").parent_id == root.span_id
    call = one(spans, "tools/call items_save", "stowage-gateway")
    assert call.parent_id == root.span_id
    assert call.tags["stowage.tool"] == "items_save" and call.tags["stowage.outcome"] == "ok"

    client = one(spans, PUT, "stowage-gateway")
    server = one(spans, PUT, "stowage-worker")
    assert client.parent_id == call.span_id and server.parent_id == client.span_id
    assert client.tags["span.kind"] == "client" and server.tags["span.kind"] == "server"
    assert server.tags["rpc.grpc.status_code"] == 0 and server.tags["stowage.tenant"] == "acme"
    statements = sql_under(spans, server)
    assert any(s.name.endswith("INSERT objects") for s in statements), span_tree(spans)
    assert all(s.tags["db.system.name"] == "postgresql" for s in statements)

    # The correlation id of the log lines and the audit row is the trace id.
    assert any(
        line.get("msg") == "tool call" and line.get("correlation_id") == trace_id
        for line in traced_gateway.log_lines()
    )
    assert f'"correlation_id": "{trace_id}"' in traced_worker.logs()
    engine = sqlalchemy.create_engine(traced_worker.database_url)
    try:
        with engine.connect() as conn:
            audited = conn.execute(
                sqlalchemy.text("SELECT action FROM audit_events WHERE correlation_id = :c"),
                {"c": trace_id},
            ).scalars()
            assert "object.create" in {str(a) for a in audited}
    finally:
        engine.dispose()

    # Never a user's data, a token or a statement's parameters.
    for span in spans:
        for value in span.tags.values():
            assert secret not in str(value) and token not in str(value), span


def test_an_incoming_traceparent_is_continued_and_an_x_request_id_kept(
    traced_gateway: GatewayProcess, jaeger: Jaeger, token: str
) -> None:
    trace_id, caller_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    request_id = f"caller-{uuid.uuid4().hex[:12]}"
    answer = post(
        traced_gateway.url("acme"),
        save("traced-2", "x"),
        token,
        traceparent=f"00-{trace_id}-{caller_span}-01",
        **{"x-request-id": request_id},
    )
    assert answer.status_code == 200
    assert answer.headers["x-request-id"] == request_id  # as before tracing

    spans = jaeger.wait_for(trace_id, complete)
    root = one(spans, ROOT, "stowage-gateway")
    assert root.parent_id == caller_span
    assert root.tags["stowage.correlation_id"] == request_id
    assert by_name(spans, PUT, "stowage-worker")


def test_a_call_the_worker_cannot_answer_shows_an_error_span_saying_why(
    traced_worker: WorkerProcess,
    jaeger: Jaeger,
    issuer: Issuer,
    tmp_path: Path,
) -> None:
    g = GatewayProcess(workdir=tmp_path)
    g.write_tenants([tenant_entry("acme", g, issuer, traced_worker.address)])
    with running_gateway(tmp_path, port=g.port, env=jaeger.otel_env) as gateway:
        token = issuer.token(gateway.url("acme"), subject=f"down-{uuid.uuid4().hex[:8]}")
        warm = post(gateway.url("acme"), save("down-1", "x"), token)
        assert warm.json()["result"]["isError"] is False
        traced_worker.kill()
        try:
            answer = post(gateway.url("acme"), save("down-2", "x"), token)
        finally:
            traced_worker.start()
    assert tool_error(answer.json()["result"])["error"]["code"] == "unavailable"

    trace_id = answer.headers["x-request-id"]
    spans = jaeger.wait_for(
        trace_id, lambda spans: any(s.failed and s.service == "stowage-gateway" for s in spans)
    )
    print(f"\ntrace {trace_id}\n{span_tree(spans)}")
    failed = [s for s in spans if s.failed]
    assert any("unavailable" in str(s.tags.get("otel.status_description", "")) for s in failed)
    assert not by_name(spans, PUT, "stowage-worker")  # nothing reached a worker


def test_the_trace_backend_down_costs_the_calls_nothing(
    traced_gateway: GatewayProcess,
    traced_worker: WorkerProcess,
    jaeger: Jaeger,
    issuer: Issuer,
    tmp_path: Path,
) -> None:
    """A gateway and worker whose OTLP endpoint refuses connections serve every call and
    keep every write: spans wait in the exporter's bounded queue, off the request path.

    The two pairs' latencies are printed side by side (interleaved calls), not asserted:
    timings on a shared machine are for reading, not for passing or failing a test.
    """
    down = {**jaeger.otel_env, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}"}
    with running_worker(
        traced_worker.database_url, tmp_path / "worker", WORKER_POLICY, migrate=False, env=down
    ) as worker:
        g = GatewayProcess(workdir=tmp_path / "gw")
        g.workdir.mkdir()
        g.write_tenants([tenant_entry("acme", g, issuer, worker.address)])
        with running_gateway(g.workdir, port=g.port, env=down) as gateway:
            subject = f"backend-down-{uuid.uuid4().hex[:8]}"
            pairs = {
                "up": (traced_gateway, issuer.token(traced_gateway.url("acme"), subject=subject)),
                "down": (gateway, issuer.token(gateway.url("acme"), subject=subject)),
            }
            seconds: dict[str, list[float]] = {"up": [], "down": []}
            for index in range(20):  # interleaved, so drift on the machine hits both alike
                for name, (target, token) in pairs.items():
                    started = time.perf_counter()
                    answer = post(target.url("acme"), save(f"{name}-{index}", "x"), token)
                    seconds[name].append(time.perf_counter() - started)
                    assert answer.status_code == 200
                    assert answer.json()["result"]["isError"] is False, answer.json()
            got = post(
                gateway.url("acme"),
                rpc("tools/call", {"name": "items_get", "arguments": {"id": "down-19"}}),
                pairs["down"][1],
            )
            assert got.json()["result"]["structuredContent"]["object"]["version"] == 1
    up, down_ms = (statistics.median(seconds[n][5:]) * 1000 for n in ("up", "down"))
    print(f"\nmedian call, backend up: {up:.2f} ms; backend down: {down_ms:.2f} ms")


def test_a_request_the_mcp_sdk_serves_is_traced_under_the_same_request_span(
    traced_gateway: GatewayProcess, jaeger: Jaeger, token: str
) -> None:
    # resources/list: the lane answers tools/call and a plain tools/list itself.
    answer = post(traced_gateway.url("acme"), rpc("resources/list"), token)
    assert answer.status_code == 200 and "resources" in answer.json()["result"]
    trace_id = answer.headers["x-request-id"]

    spans = jaeger.wait_for(trace_id, lambda spans: len(spans) >= 2 and bool(by_name(spans, ROOT)))
    root = one(spans, ROOT, "stowage-gateway")
    sdk = [s for s in spans if s.name.startswith("resources/list")]
    assert sdk and all(s.service == "stowage-gateway" for s in sdk), span_tree(spans)
    ids = {s.span_id for s in spans}
    assert all(s.parent_id in ids for s in spans if s is not root), span_tree(spans)
