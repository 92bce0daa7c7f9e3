"""Tracing on or off, from the standard ``OTEL_*`` variables, once per serving process.

On only when an OTLP/HTTP endpoint is named (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``
or ``OTEL_EXPORTER_OTLP_ENDPOINT``), unless ``OTEL_SDK_DISABLED=true`` or
``OTEL_TRACES_EXPORTER=none``. Then the SDK reads the rest itself: the sampler
(``OTEL_TRACES_SAMPLER``, ``OTEL_TRACES_SAMPLER_ARG``; parent-based always-on
by default), the resource (``OTEL_RESOURCE_ATTRIBUTES``; ``service.name`` is
``OTEL_SERVICE_NAME`` or the component's own), the exporter's headers and
timeout (``OTEL_EXPORTER_OTLP_*``) and the batch queue (``OTEL_BSP_*``). Spans
leave in a background thread through a bounded queue: a backend that is down
costs the calls nothing but the spans it drops.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from stowage.tracing import _spans

log = logging.getLogger(__name__)

#: The variables that name where spans go; tracing is off while neither is set.
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
#: What a process passes on to the processes it creates (the operator to the workers and
#: backup Jobs): where spans go, how many to keep, the resource. Not ``OTEL_SERVICE_NAME``
#: (each component names itself) nor the exporter's headers (they may hold a credential
#: that belongs in a Secret, not in a Deployment's plain environment).
PASSED_ON = (
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
    *ENDPOINT_VARIABLES,
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_RESOURCE_ATTRIBUTES",
)


@dataclass(frozen=True)
class TracingSettings:
    """Whether to trace, and why not when not (read from the environment once)."""

    enabled: bool
    service_name: str
    why_off: str = ""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], service: str) -> TracingSettings:
        name = environ.get("OTEL_SERVICE_NAME", "").strip() or service
        if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            return cls(False, name, "OTEL_SDK_DISABLED=true")
        if environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
            return cls(False, name, "OTEL_TRACES_EXPORTER=none")
        if not any(environ.get(v, "").strip() for v in ENDPOINT_VARIABLES):
            return cls(False, name, "no OTEL_EXPORTER_OTLP_ENDPOINT")
        return cls(True, name)


def configure(service: str, environ: Mapping[str, str]) -> TracingSettings:
    """Turn tracing on in this process when ``environ`` asks for it; the settings read.

    ``service``: the component's ``service.name`` (``stowage-gateway``, …) unless
    ``OTEL_SERVICE_NAME`` names another. Call once, from a serving entry point.
    """
    settings = TracingSettings.from_environ(environ, service)
    if not settings.enabled:
        return settings
    # Imported here: a process that does not trace never loads the SDK.
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: settings.service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _spans.turn_on()
    log.info("tracing on", extra={"service": settings.service_name})
    return settings


def shutdown() -> None:
    """Export what is queued and stop (the SDK also does so at exit)."""
    if not _spans.enabled():
        return
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    flush = getattr(provider, "shutdown", None)
    if flush is not None:
        flush()
    _spans.turn_off()
