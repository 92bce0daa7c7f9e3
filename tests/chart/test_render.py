"""What the chart renders, checked with the real ``helm`` (lint, template, the values schema)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from stowage_operator import OperatorSettings

from gateway._settings import GatewaySettings
from tests.chart.support import (
    CHART,
    PRODUCTION_VALUES,
    Helm,
    HelmError,
    container,
    find,
    kinds,
    plain_env,
    pod_spec,
)

pytestmark = pytest.mark.helm

MONITORING_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}


def rule_alerts(docs: list[dict[str, Any]]) -> set[str]:
    rule = find(docs, "PrometheusRule")
    return {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}


def test_chart_lints_strictly_with_default_and_production_values(helm: Helm) -> None:
    helm.run("lint", "--strict", str(CHART))
    helm.run("lint", "--strict", str(CHART), "--values", str(PRODUCTION_VALUES))


def test_default_values_install_operator_gateway_redis_and_policies_without_monitoring(
    helm: Helm,
) -> None:
    docs = helm.template()
    assert {
        "Deployment",
        "Service",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "PodDisruptionBudget",
        "NetworkPolicy",
    } <= kinds(docs)
    assert not kinds(docs) & (MONITORING_KINDS | {"Ingress", "HorizontalPodAutoscaler", "Pod"})
    names = {d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"}
    assert names == {"stowage-operator", "stowage-gateway", "stowage-redis"}
    assert find(docs, "Deployment", "-gateway")["spec"]["replicas"] == 2
    env = plain_env(container(find(docs, "Deployment", "-gateway"), "gateway"))
    assert env["STOWAGE_REDIS_URL"] == "redis://stowage-redis:6379/0"


def test_production_values_render_ingress_tls_autoscaling_external_redis_and_monitoring(
    helm: Helm,
) -> None:
    docs = helm.template(PRODUCTION_VALUES)
    assert MONITORING_KINDS | {"Ingress", "HorizontalPodAutoscaler", "ConfigMap"} <= kinds(docs)
    assert "stowage-redis" not in {d["metadata"]["name"] for d in docs}

    ingress = find(docs, "Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [
        {"hosts": ["mcp.acme-platform.example"], "secretName": "mcp-acme-platform-tls"}
    ]
    assert ingress["spec"]["rules"][0]["host"] == "mcp.acme-platform.example"

    gateway = find(docs, "Deployment", "-gateway")
    assert "replicas" not in gateway["spec"], "the HPA owns the replica count"
    hpa = find(docs, "HorizontalPodAutoscaler")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 12)
    c = container(gateway, "gateway")
    assert "--public-url=https://mcp.acme-platform.example" in c["args"]
    assert "--allowed-host=mcp.acme-platform.example" in c["args"]
    assert "--allowed-origin=https://chatgpt.com" in c["args"]
    password = next(e for e in c["env"] if e["name"] == "STOWAGE_REDIS_PASSWORD")
    assert password["valueFrom"]["secretKeyRef"] == {
        "name": "stowage-redis",
        "key": "redis-password",
    }

    for doc in docs:
        if doc["kind"] in MONITORING_KINDS or doc["metadata"]["name"].endswith("-dashboards"):
            assert doc["metadata"]["labels"]["release"] == "kube-prometheus", doc["kind"]
    dashboards = find(docs, "ConfigMap", "-dashboards")
    assert dashboards["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboards["data"] and all(k.endswith(".json") for k in dashboards["data"])


def test_the_gateway_reads_the_redis_password_from_the_secret_into_the_url(helm: Helm) -> None:
    c = container(find(helm.template(PRODUCTION_VALUES), "Deployment", "-gateway"), "gateway")
    env = {**plain_env(c), "STOWAGE_REDIS_PASSWORD": "p@ss/word"}  # what the kubelet injects
    settings = GatewaySettings.from_env(env)
    assert (
        settings.redis_url == "redis://:p%40ss%2Fword@redis-master.redis.svc.cluster.local:6380/2"
    )


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--set-string", "gateway.replicas=3"], "at '/gateway/replicas': got string"),
        (["--set", "gateway.replica=3"], "at '/gateway': additional properties 'replica'"),
        (["--set", "gateway.publicUrl=null"], "at '/gateway': missing property 'publicUrl'"),
        (["--set", "gateway.publicUrl=mcp.example.com"], "at '/gateway/publicUrl'"),
        (["--set", "operator.metrics.port=0"], "at '/operator/metrics/port'"),
        (["--set", "monitoring.workers.enabeld=true"], "additional properties 'enabeld'"),
    ],
    ids=[
        "string-replicas",
        "unknown-key",
        "missing-public-url",
        "url-without-scheme",
        "port-zero",
        "misspelt-monitoring-key",
    ],
)
def test_values_schema_refuses_wrong_values_naming_the_field(
    helm: Helm, args: list[str], named: str
) -> None:
    with pytest.raises(HelmError) as refused:
        helm.run("template", "stowage", str(CHART), *args)
    assert "values don't meet the specifications of the schema" in refused.value.stderr
    assert named in refused.value.stderr, refused.value.stderr

    with pytest.raises(HelmError) as refused:
        helm.run("lint", "--strict", str(CHART), *args)
    assert named in refused.value.stdout + refused.value.stderr


def test_public_url_must_be_https_except_on_a_loopback_host(helm: Helm) -> None:
    for url in ("http://mcp.example.com", "http://10.0.0.5:8000"):
        with pytest.raises(HelmError) as refused:
            helm.template(sets={"gateway.publicUrl": url})
        assert "/gateway/publicUrl" in refused.value.stderr
        assert "does not match pattern '^https://'" in refused.value.stderr
    for url in ("https://mcp.example.com", "http://localhost:8080", "http://127.0.0.1"):
        helm.template(sets={"gateway.publicUrl": url})


def test_an_issuer_ca_bundle_is_mounted_and_named_to_the_gateway(helm: Helm) -> None:
    for source, field in (("secretName", "secret"), ("configMapName", "configMap")):
        docs = helm.template(sets={f"gateway.issuerCA.{source}": "acme-issuer-ca"})
        gateway = find(docs, "Deployment", "-gateway")
        c = container(gateway, "gateway")
        path = plain_env(c)["STOWAGE_GATEWAY_ISSUER_CA_FILE"]
        assert GatewaySettings.from_env(plain_env(c)).issuer_ca_file == Path(path)
        [mount] = [m for m in c["volumeMounts"] if m["name"] == "issuer-ca"]
        assert Path(path).parent == Path(mount["mountPath"])
        [volume] = [v for v in pod_spec(gateway)["volumes"] if v["name"] == "issuer-ca"]
        named = volume[field].get("secretName") or volume[field].get("name")
        assert named == "acme-issuer-ca"
        assert volume[field]["items"] == [{"key": "ca.crt", "path": Path(path).name}]
    plain = container(find(helm.template(), "Deployment", "-gateway"), "gateway")
    assert "STOWAGE_GATEWAY_ISSUER_CA_FILE" not in plain_env(plain)
    with pytest.raises(HelmError, match="issuerCA"):
        helm.template(
            sets={"gateway.issuerCA.secretName": "a", "gateway.issuerCA.configMapName": "b"}
        )


def test_more_than_one_gateway_replica_without_redis_is_refused_saying_why(helm: Helm) -> None:
    with pytest.raises(HelmError) as refused:
        helm.template(sets={"gateway.replicas": "3", "redis.deploy": "false"})
    message = refused.value.stderr
    assert "gateway: 3 replicas need Redis to share rate limits" in message
    assert "redis.url" in message and "redis.deploy=true" in message

    # One replica needs none; an external URL or the chart's own Redis serve many.
    helm.template(sets={"gateway.replicas": "1", "redis.deploy": "false"})
    helm.template(
        sets={"gateway.replicas": "3", "redis.deploy": "false", "redis.url": "redis://r:6379/0"}
    )
    with pytest.raises(HelmError, match="10 replicas need Redis"):
        helm.template(
            sets={
                "gateway.replicas": "1",
                "redis.deploy": "false",
                "gateway.autoscaling.enabled": "true",
                "gateway.autoscaling.maxReplicas": "10",
            }
        )


def test_image_defaults_to_the_app_version_and_workers_run_the_same_image(helm: Helm) -> None:
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    docs = helm.template(sets={"image.repository": "registry.example/stowage"})
    operator = container(find(docs, "Deployment", "-operator"), "operator")
    gateway = container(find(docs, "Deployment", "-gateway"), "gateway")
    expected = f"registry.example/stowage:{app_version}"
    assert operator["image"] == gateway["image"] == expected
    assert plain_env(operator)["STOWAGE_WORKER_IMAGE"] == expected

    pinned = helm.template(sets={"image.tag": "0.2.0-rc1", "operator.workerImage": "w:1"})
    operator = container(find(pinned, "Deployment", "-operator"), "operator")
    assert operator["image"].endswith(":0.2.0-rc1")
    assert plain_env(operator)["STOWAGE_WORKER_IMAGE"] == "w:1"


def test_operator_runs_one_replica_recreated_never_two_at_once(helm: Helm) -> None:
    operator = find(helm.template(PRODUCTION_VALUES), "Deployment", "-operator")
    assert operator["spec"]["replicas"] == 1
    assert operator["spec"]["strategy"] == {"type": "Recreate"}
    with pytest.raises(HelmError, match="replicas"):
        helm.template(sets={"operator.replicas": "2"})


def test_worker_network_policy_admits_exactly_this_releases_gateway_pods(helm: Helm) -> None:
    """The operator, configured as the chart configures it, selects the chart's gateway pods."""
    from stowage_operator._manifests import network_policy
    from stowage_operator._types import TenantRef

    docs = helm.template(release="blue")
    operator_env = plain_env(container(find(docs, "Deployment", "-operator"), "operator"))
    settings = OperatorSettings.from_env(operator_env)
    gateway_labels = find(docs, "Deployment", "-gateway")["spec"]["template"]["metadata"]["labels"]

    policy = network_policy(TenantRef("t", "acme", "uid", 1), settings)  # type: ignore[arg-type]
    peer = policy["spec"]["ingress"][0]["from"][0]
    assert peer["podSelector"]["matchLabels"].items() <= gateway_labels.items()
    assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == "blue"

    other = helm.template(release="green")
    other_labels = find(other, "Deployment", "-gateway")["spec"]["template"]["metadata"]["labels"]
    assert not peer["podSelector"]["matchLabels"].items() <= other_labels.items()


EVERY_MONITOR = {f"monitoring.{m}.enabled": "true" for m in ("gateway", "operator", "workers")}
#: The alerts on a component's scrape targets, and the monitor each needs.
COMPONENT_ALERTS = {
    "StowageGatewayDown": "gateway",
    "StowageOperatorDown": "operator",
    "StowageWorkerScrapeFailing": "workers",
}


def test_prometheus_rule_embeds_the_rule_file_less_the_disabled_alerts(helm: Helm) -> None:
    rules_file = yaml.safe_load((CHART / "files" / "prometheus" / "rules.yaml").read_text())
    every = {r["alert"] for g in rules_file["groups"] for r in g["rules"] if "alert" in r}
    assert every, "the rule file has alerts"
    sets = {"monitoring.prometheusRule.enabled": "true", **EVERY_MONITOR}
    assert rule_alerts(helm.template(sets=sets)) == every

    dropped = sorted(every)[0]
    docs = helm.template(
        sets={
            **sets,
            "monitoring.prometheusRule.disabledAlerts[0]": dropped,
            "monitoring.prometheusRule.additionalLabels.role": "alert-rules",
        }
    )
    assert rule_alerts(docs) == every - {dropped}
    assert find(docs, "PrometheusRule")["metadata"]["labels"]["role"] == "alert-rules"

    with pytest.raises(HelmError, match='no alert named "StowageNoSuchAlert"'):
        helm.template(
            sets={**sets, "monitoring.prometheusRule.disabledAlerts[0]": "StowageNoSuchAlert"}
        )


def test_a_component_alert_is_left_out_while_its_monitor_is_off(helm: Helm) -> None:
    """Without a gateway ServiceMonitor, absent(up{job="stowage-gateway"}) would always fire."""
    for alert, monitor in COMPONENT_ALERTS.items():
        sets = {
            "monitoring.prometheusRule.enabled": "true",
            **EVERY_MONITOR,
            f"monitoring.{monitor}.enabled": "false",
        }
        alerts = rule_alerts(helm.template(sets=sets))
        assert alert not in alerts
        assert set(COMPONENT_ALERTS) - {alert} <= alerts


def test_monitors_set_the_job_names_the_component_alerts_read(helm: Helm) -> None:
    docs = helm.template(sets=EVERY_MONITOR, release="blue")
    rules = (CHART / "files" / "prometheus" / "rules.yaml").read_text()
    for kind, suffix, key in (
        ("ServiceMonitor", "-gateway", "endpoints"),
        ("ServiceMonitor", "-operator", "endpoints"),
        ("PodMonitor", "-workers", "podMetricsEndpoints"),
    ):
        endpoint = find(docs, kind, suffix)["spec"][key][0]
        job = next(r["replacement"] for r in endpoint["relabelings"] if r["targetLabel"] == "job")
        assert f'up{{job="{job}"}}' in rules, job


def test_runbook_urls_follow_the_configured_base_and_the_values_example_is_a_real_alert(
    helm: Helm,
) -> None:
    sets = {"monitoring.prometheusRule.enabled": "true", **EVERY_MONITOR}
    base = "https://wiki.example.internal/stowage/runbooks/"
    docs = helm.template(sets={**sets, "monitoring.prometheusRule.runbookBaseUrl": base})
    rule = find(docs, "PrometheusRule")
    for group in rule["spec"]["groups"]:
        for r in group["rules"]:
            if "alert" in r:
                assert r["annotations"]["runbook_url"] == f"{base}{r['alert']}.md"

    # The example in values.yaml's comment on disabledAlerts renders and drops that alert.
    values = (CHART / "values.yaml").read_text()
    example = values.split("Names of alerts to leave out, e.g. [", 1)[1].split("]", 1)[0]
    docs = helm.template(sets={**sets, "monitoring.prometheusRule.disabledAlerts[0]": example})
    assert example not in rule_alerts(docs)
    assert example in rule_alerts(helm.template(sets=sets))


def test_worker_pod_monitor_labels_series_with_tenant_and_namespace(helm: Helm) -> None:
    monitor = find(helm.template(sets={"monitoring.workers.enabled": "true"}), "PodMonitor")
    assert monitor["spec"]["namespaceSelector"] == {"any": True}
    assert monitor["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "stowage-worker"
    }
    endpoint = monitor["spec"]["podMetricsEndpoints"][0]
    assert endpoint["port"] == "metrics"
    relabel = {r["targetLabel"]: r.get("sourceLabels") for r in endpoint["relabelings"]}
    assert relabel["tenant"] == ["__meta_kubernetes_pod_label_stowage_dev_tenant"]
    assert relabel["namespace"] == ["__meta_kubernetes_namespace"]


def test_dogfood_helm_test_runs_against_the_tenants_mcp_url_with_the_token_secret(
    helm: Helm,
) -> None:
    assert "Pod" not in kinds(helm.template())
    pod = find(helm.template(PRODUCTION_VALUES), "Pod", "-dogfood")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    c = container(pod, "dogfood")
    assert c["args"] == [
        "dogfood",
        "--mcp-url=https://mcp.acme-platform.example/t/acme/mcp",
        "--timeout=60",
        "--max-object-bytes=64Ki",
    ]
    token = next(e for e in c["env"] if e["name"] == "STOWAGE_DOGFOOD_TOKEN")
    assert token["valueFrom"]["secretKeyRef"] == {"name": "stowage-dogfood-token", "key": "token"}
    assert pod_spec(pod)["restartPolicy"] == "Never"


def test_a_changed_gateway_value_changes_only_the_gateway_pod_template(helm: Helm) -> None:
    before = helm.template()
    after = helm.template(sets={"gateway.logLevel": "DEBUG"})

    def template(docs: list[dict[str, Any]], suffix: str) -> dict[str, Any]:
        found: dict[str, Any] = find(docs, "Deployment", suffix)["spec"]["template"]
        return found

    assert template(before, "-gateway") != template(after, "-gateway")
    assert template(before, "-operator") == template(after, "-operator")
    assert (
        "--log-level=DEBUG" in container(find(after, "Deployment", "-gateway"), "gateway")["args"]
    )


@pytest.mark.parametrize("values", ["default", "production"])
def test_every_stowage_container_runs_a_command_the_cli_accepts(helm: Helm, values: str) -> None:
    from stowage.cli import build_parser

    files = [PRODUCTION_VALUES] if values == "production" else []
    docs = helm.template(
        *files, sets={"tests.dogfood.tenant": "acme", "tests.dogfood.tokenSecret": "t"}
    )
    seen: set[str] = set()
    for doc in docs:
        if doc["kind"] not in {"Deployment", "Pod"}:
            continue
        for c in pod_spec(doc)["containers"]:
            if not c["image"].startswith(helm_image_prefix(docs)):
                continue  # the chart's Redis
            args = c["args"]
            parsed = build_parser(args[0]).parse_args(args)
            assert callable(parsed.handler), args
            seen.add(args[0])
    assert seen == {"operator", "gateway", "dogfood"}


def helm_image_prefix(docs: list[dict[str, Any]]) -> str:
    image: str = container(find(docs, "Deployment", "-operator"), "operator")["image"]
    return image.rsplit(":", 1)[0]
