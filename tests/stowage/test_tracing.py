"""Tracing's switch and what it costs off; the operator passing it on to workers and backups.

The traces themselves, through the real processes into a real backend, are
tests/tracing's.
"""

from __future__ import annotations

import timeit

from opentelemetry import trace
from stowage_operator._backups import BackupPlan, cron_job
from stowage_operator._manifests import deployment
from stowage_operator._settings import OperatorSettings
from stowage_operator._types import Namespace, Region, RegionName, TenantName, TenantRef

from stowage import tracing

ENDPOINT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}


def test_tracing_is_off_unless_an_exporter_endpoint_is_named() -> None:
    assert not tracing.TracingSettings.from_environ({}, "stowage-gateway").enabled
    assert tracing.TracingSettings.from_environ(ENDPOINT, "stowage-gateway").enabled
    traces_only = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}
    assert tracing.TracingSettings.from_environ(traces_only, "stowage-gateway").enabled


def test_the_standard_switches_turn_it_off_even_with_an_endpoint() -> None:
    for off in ({"OTEL_SDK_DISABLED": "true"}, {"OTEL_TRACES_EXPORTER": "none"}):
        settings = tracing.TracingSettings.from_environ({**ENDPOINT, **off}, "stowage-worker")
        assert not settings.enabled and settings.why_off


def test_otel_service_name_names_the_service_else_the_component_does() -> None:
    named = {**ENDPOINT, "OTEL_SERVICE_NAME": "edge"}
    assert tracing.TracingSettings.from_environ(named, "stowage-gateway").service_name == "edge"
    assert tracing.TracingSettings.from_environ(ENDPOINT, "stowage-gateway").service_name == (
        "stowage-gateway"
    )


def test_a_span_while_off_is_a_shared_null_context_far_cheaper_than_otels_no_op() -> None:
    assert not tracing.enabled()
    ours = tracing.Tracer("test")
    with ours.span("x", {"stowage.tenant": "acme"}) as span:
        assert span is tracing.INVALID_SPAN
    assert tracing.trace_id() is None and tracing.sampled_trace_id() is None
    no_op = trace.NoOpTracer()

    def off() -> None:
        with ours.span("gateway.authenticate", {"stowage.tenant": "acme"}):
            pass

    def otel_no_op() -> None:
        with no_op.start_as_current_span("gateway.authenticate", attributes={"t": "acme"}):
            pass

    n = 20000
    ours_us = min(timeit.repeat(off, number=n, repeat=3)) / n * 1e6
    otel_us = min(timeit.repeat(otel_no_op, number=n, repeat=3)) / n * 1e6
    print(f"span while off: {ours_us:.2f} µs; OpenTelemetry's no-op tracer: {otel_us:.2f} µs")
    assert ours_us < otel_us / 3


def test_the_operator_passes_its_tracing_variables_on_but_not_the_exporters_headers() -> None:
    environ = {
        **ENDPOINT,
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.01",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=prod",
        "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer secret",
        "OTEL_SERVICE_NAME": "stowage-operator",
    }
    settings = OperatorSettings.from_env(environ)
    expected = {k: v for k, v in environ.items() if "HEADERS" not in k and "SERVICE" not in k}
    assert dict(settings.tracing) == expected

    ref = TenantRef(Namespace("t"), TenantName("acme"), "uid", 1)
    region = Region(RegionName("eu"), "pg", 5432, "postgres", "require", "admin", "ns")
    spec = {"region": "eu", "auth": {"issuer": "https://i.example/", "audience": "https://a/"}}
    worker = deployment(ref, spec, region, settings)["spec"]["template"]["spec"]["containers"][0]
    plan = BackupPlan("claim", "0 3 * * *", "0 4 * * 0", 7, None)
    job = cron_job("backup", ref, spec, plan, region, settings)
    backup = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    for container in (worker, backup):
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert {k: env.get(k) for k in expected} == expected
        assert "OTEL_EXPORTER_OTLP_HEADERS" not in env and "OTEL_SERVICE_NAME" not in env


def test_a_worker_of_an_operator_that_does_not_trace_gets_no_tracing_variables() -> None:
    settings = OperatorSettings.from_env({})
    ref = TenantRef(Namespace("t"), TenantName("acme"), "uid", 1)
    region = Region(RegionName("eu"), "pg", 5432, "postgres", "require", "admin", "ns")
    spec = {"region": "eu", "auth": {"issuer": "https://i.example/", "audience": "https://a/"}}
    worker = deployment(ref, spec, region, settings)["spec"]["template"]["spec"]["containers"][0]
    assert not [e for e in worker["env"] if e["name"].startswith("OTEL_")]
