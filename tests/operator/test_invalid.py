"""Invalid Tenants are refused by the API server or reported with a reason that names the field."""

from __future__ import annotations

import uuid

import pytest

from stowage_testing.kube import KubeCluster, KubeError
from stowage_testing.operator import (
    API,
    condition,
    databases,
    make_region,
    tenant_doc,
    wait_for_tenant,
)
from stowage_testing.postgres import PostgresServer

pytestmark = pytest.mark.kube


def _refused(kube: KubeCluster, doc: dict) -> str:
    with pytest.raises(KubeError) as refused:
        kube.apply(doc)
    assert refused.value.status == 422, refused.value.body
    return str(refused.value.body["message"])


def test_a_negative_rate_limit_is_refused_naming_the_field(
    kube: KubeCluster, namespace: str, region: str
) -> None:
    doc = tenant_doc("acme", namespace, region)
    doc["spec"]["rateLimits"]["perUser"]["requestsPerMinute"] = -5
    message = _refused(kube, doc)
    assert "spec.rateLimits.perUser.requestsPerMinute" in message


def test_a_per_user_limit_above_the_tenant_limit_is_refused(
    kube: KubeCluster, namespace: str, region: str
) -> None:
    doc = tenant_doc("acme", namespace, region)
    doc["spec"]["rateLimits"] = {
        "perUser": {"requestsPerMinute": 9000, "burst": 10},
        "perTenant": {"requestsPerMinute": 6000, "burst": 600},
    }
    message = _refused(kube, doc)
    assert "perUser.requestsPerMinute must not exceed perTenant.requestsPerMinute" in message


def test_a_per_user_object_quota_above_the_tenant_quota_is_refused(
    kube: KubeCluster, namespace: str, region: str
) -> None:
    doc = tenant_doc("acme", namespace, region)
    doc["spec"]["quotas"]["perUser"] = {"maxObjects": 5000, "maxBytes": "1Mi"}
    message = _refused(kube, doc)
    assert "quotas.perUser.maxObjects must not exceed quotas.maxObjects" in message
    doc["spec"]["quotas"]["perUser"] = {"maxBytes": "lots"}
    assert "spec.quotas.perUser.maxBytes" in _refused(kube, doc)


def test_changing_the_region_is_refused(
    kube: KubeCluster, namespace: str, region: str, postgres: PostgresServer
) -> None:
    kube.apply(tenant_doc("acme", namespace, region))
    other = make_region(kube, postgres)
    with pytest.raises(KubeError) as refused:
        kube.patch(API, "Tenant", "acme", {"spec": {"region": other}}, namespace)
    assert refused.value.status == 422
    assert "spec.region" in refused.value.body["message"]
    assert "region is immutable" in refused.value.body["message"]


def test_a_collection_schema_that_is_not_an_object_schema_is_refused(
    kube: KubeCluster, namespace: str, region: str
) -> None:
    doc = tenant_doc("acme", namespace, region)
    doc["spec"]["collections"][0]["schema"] = {"type": "array"}
    message = _refused(kube, doc)
    assert "spec.collections[0].schema.type" in message


def test_an_invalid_json_schema_is_reported_with_the_field_and_nothing_is_created(
    kube: KubeCluster, namespace: str, region: str, postgres: PostgresServer
) -> None:
    doc = tenant_doc("acme", namespace, region)
    doc["spec"]["collections"][0]["schema"] = {
        "type": "object",
        "properties": {"title": {"type": "strnig"}},
    }
    kube.apply(doc)
    tenant = wait_for_tenant(kube, namespace, "acme", ready=False, reason="InvalidSpec")
    message = condition(tenant, "Ready")["message"]
    assert "spec.collections[0].schema.properties.title.type" in message
    assert kube.get("v1", "Secret", "tenant-acme-db", namespace) is None
    assert kube.get("apps/v1", "Deployment", "tenant-acme-worker", namespace) is None

    # Fixing the spec is enough: the operator picks the change up.
    kube.patch(
        API,
        "Tenant",
        "acme",
        {"spec": {"collections": [{"name": "notes", "schema": {"type": "object"}}]}},
        namespace,
    )
    wait_for_tenant(kube, namespace, "acme", ready=True)


def test_a_tenant_of_a_missing_region_waits_with_a_reason_and_creates_nothing(
    kube: KubeCluster, namespace: str, postgres: PostgresServer
) -> None:
    missing = f"r-{uuid.uuid4().hex[:8]}"
    kube.apply(tenant_doc("acme", namespace, missing))
    tenant = wait_for_tenant(kube, namespace, "acme", ready=False, reason="RegionNotFound")
    assert missing in condition(tenant, "Ready")["message"]
    assert condition(tenant, "DatabaseReady")["status"] == "False"
    assert kube.get("v1", "Secret", "tenant-acme-db", namespace) is None
    assert not any(namespace.replace("-", "_") in d for d in databases(postgres.dsn()))

    make_region(kube, postgres, name=missing)
    wait_for_tenant(kube, namespace, "acme", ready=True)


def test_a_region_that_does_not_accept_tenants_refuses_new_ones_with_a_reason(
    kube: KubeCluster, namespace: str, postgres: PostgresServer
) -> None:
    closed = make_region(kube, postgres, acceptingTenants=False)
    kube.apply(tenant_doc("acme", namespace, closed))
    wait_for_tenant(kube, namespace, "acme", ready=False, reason="RegionNotAccepting")
    assert kube.get("v1", "Secret", "tenant-acme-db", namespace) is None


def test_an_internal_stage_needs_testers_and_a_bad_access_or_introspection_field_is_refused(
    kube: KubeCluster, namespace: str, region: str
) -> None:
    doc = tenant_doc("acme", namespace, region)
    doc["spec"]["access"] = {"stage": "Internal"}
    message = _refused(kube, doc)
    assert "spec.access.stage" in message
    assert "access.stage Internal needs allowSubjects or allowEmailDomains" in message
    doc["spec"]["access"] = {"stage": "Beta", "allowSubjects": ["tess"]}
    assert "spec.access.stage" in _refused(kube, doc)
    doc["spec"]["access"] = {"stage": "Internal", "allowEmailDomains": ["Acme.Example"]}
    assert "spec.access.allowEmailDomains[0]" in _refused(kube, doc)
    doc["spec"]["access"] = {"stage": "Internal", "allowEmailDomains": ["acme.example"]}
    doc["spec"]["auth"]["introspection"] = {"endpoint": "http://evil.example/i", "clientId": "gw"}
    message = _refused(kube, doc)
    assert "spec.auth.introspection.endpoint" in message and "https://" in message

    # Valid: testers only, introspected; then launched by changing the stage alone.
    doc["spec"]["auth"]["introspection"]["endpoint"] = "https://login.acme.example/introspect"
    kube.apply(doc)
    kube.patch(
        API, "Tenant", "acme", {"spec": {"access": {"stage": "GeneralAvailability"}}}, namespace
    )
    launched = kube.get(API, "Tenant", "acme", namespace)
    assert launched is not None and launched["spec"]["access"]["stage"] == "GeneralAvailability"


def _component(**overrides: object) -> dict[str, object]:
    return {"name": "board", "html": "<p>notes</p>", "tools": ["notes_get"], **overrides}


def test_a_component_naming_an_unknown_tool_an_http_domain_or_too_much_html_is_refused(
    kube: KubeCluster, namespace: str, region: str
) -> None:
    doc = tenant_doc("acme", namespace, region)
    doc["spec"]["components"] = [_component(tools=["notes_get", "invoices_list"])]
    message = _refused(kube, doc)
    assert "spec.components" in message
    assert "may name only <collection>_save" in message
    doc["spec"]["components"] = [_component(appOnly=["my_data_erase"])]
    assert "may name only <collection>_save" in _refused(kube, doc)
    doc["spec"]["components"] = [_component(domains={"connect": ["http://api.example.com"]})]
    assert "spec.components[0].domains.connect[0]" in _refused(kube, doc)
    doc["spec"]["components"] = [_component(html="x" * (512 * 1024 + 1))]
    assert "spec.components[0].html" in _refused(kube, doc)
    two_large = [_component(name=n, html="x" * 400_000, tools=[]) for n in ("a", "b")]
    doc["spec"]["components"] = two_large
    assert "at most 768 KiB in all" in _refused(kube, doc)
    # A valid component is accepted as it stands.
    doc["spec"]["components"] = [_component(domains={"resource": ["https://*.example.com"]})]
    kube.apply(doc)


def test_a_component_loading_script_from_an_undeclared_domain_is_reported_and_not_served(
    kube: KubeCluster, namespace: str, region: str, postgres: PostgresServer
) -> None:
    # The API server cannot read HTML: the operator's reading of the spec refuses it.
    doc = tenant_doc("acme", namespace, region)
    html = '<p>notes</p><script src="https://cdn.evil.example/x.js"></script>'
    doc["spec"]["components"] = [_component(html=html)]
    kube.apply(doc)
    tenant = wait_for_tenant(kube, namespace, "acme", ready=False, reason="InvalidSpec")
    message = condition(tenant, "Ready")["message"]
    assert "spec.components[0].html: loads 'https://cdn.evil.example/x.js'" in message
    assert kube.get("apps/v1", "Deployment", "tenant-acme-worker", namespace) is None
