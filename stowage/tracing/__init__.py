"""Traces: OpenTelemetry spans for every component, off unless an exporter is configured.

- ``_setup``: :func:`configure` reads the standard ``OTEL_*`` variables once,
  at a serving process's entry point: tracing is on only when an OTLP
  endpoint is named (``OTEL_EXPORTER_OTLP_ENDPOINT`` or
  ``…_TRACES_ENDPOINT``) and neither ``OTEL_SDK_DISABLED=true`` nor
  ``OTEL_TRACES_EXPORTER=none`` says otherwise; the sampler
  (``OTEL_TRACES_SAMPLER`` / ``_ARG``), resource attributes and exporter
  options are the SDK's own;
- ``_spans``: :class:`Tracer`, whose spans cost nothing while tracing is off
  (one shared null context: not even OTel's no-op tracer, which measured
  ~11 µs a span), nor under a parent the sampler dropped; :func:`trace_id` for
  correlation ids and exemplars;
- ``rpc``: trace context across gRPC (``traceparent``/``tracestate`` in the
  metadata, ``stowage.wire``): a traced stub for the client, a span per call,
  and the server's span around each handler; nothing while tracing is off;
- ``sql``: a span per SQL statement from SQLAlchemy's engine events, with the
  statement's text and never its parameters.

``rpc`` (grpc) and ``sql`` (SQLAlchemy) are imported by the components that
need them, not from here. Knows no tenant, tool or spec field: callers name
their spans and attributes. Nothing happens at import time; the SDK is
imported only when tracing is on.
"""

from __future__ import annotations

from stowage.tracing._setup import PASSED_ON, TracingSettings, configure, shutdown
from stowage.tracing._spans import (
    INVALID_SPAN,
    Span,
    SpanKind,
    StatusCode,
    Tracer,
    annotate,
    enabled,
    extract,
    fail,
    sampled_trace_id,
    trace_id,
)

__all__ = [
    "INVALID_SPAN",
    "PASSED_ON",
    "Span",
    "SpanKind",
    "StatusCode",
    "Tracer",
    "TracingSettings",
    "annotate",
    "configure",
    "enabled",
    "extract",
    "fail",
    "sampled_trace_id",
    "shutdown",
    "trace_id",
]
