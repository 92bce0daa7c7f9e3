"""``tracing.*``: the standard OTEL_* variables for the gateway and the operator (which passes
them on to the workers and backup Jobs), egress to the backend, nothing while off."""

from __future__ import annotations

import pytest

from tests.chart.support import Helm, HelmError, container, find, plain_env

pytestmark = pytest.mark.helm

TRACED = {
    "tracing.endpoint": "http://otel-collector.observability:4318",
    "tracing.samplerArg": "0.05",
    "tracing.resourceAttributes.deployment\\.environment\\.name": "prod",
}


def test_tracing_values_set_the_standard_otel_variables_of_gateway_and_operator(
    helm: Helm,
) -> None:
    docs = helm.template(sets=TRACED)
    for suffix, name in (("-gateway", "gateway"), ("-operator", "operator")):
        env = plain_env(container(find(docs, "Deployment", suffix), name))
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability:4318"
        assert env["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
        assert env["OTEL_TRACES_SAMPLER_ARG"] == "0.05"
        assert env["OTEL_RESOURCE_ATTRIBUTES"] == "deployment.environment.name=prod"
    for suffix in ("-gateway", "-operator"):
        egress = find(docs, "NetworkPolicy", suffix)["spec"]["egress"]
        assert any({"protocol": "TCP", "port": 4318} in rule["ports"] for rule in egress), suffix


def test_tracing_is_off_by_default_no_variable_and_no_egress(helm: Helm) -> None:
    docs = helm.template()
    for suffix, name in (("-gateway", "gateway"), ("-operator", "operator")):
        env = plain_env(container(find(docs, "Deployment", suffix), name))
        assert not [k for k in env if k.startswith("OTEL_")]
        egress = find(docs, "NetworkPolicy", suffix)["spec"]["egress"]
        assert not any({"protocol": "TCP", "port": 4318} in rule["ports"] for rule in egress)


def test_the_schema_refuses_an_unknown_sampler_and_a_share_above_one(helm: Helm) -> None:
    for sets in ({"tracing.sampler": "sometimes"}, {"tracing.samplerArg": "1.5"}):
        with pytest.raises(HelmError, match="tracing"):
            helm.template(sets={**TRACED, **sets})
