"""The CRDs explain themselves: every field of Region and Tenant has a description.

The first tests only parse the YAML; the last one asks a real API server for
the OpenAPI document ``kubectl explain`` reads, to show the descriptions are
published as written.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from stowage_testing.kube import KubeCluster
from stowage_testing.tools import eventually

CRDS = Path(__file__).resolve().parents[2] / "charts" / "stowage" / "crds"
#: The API server refuses a description on ``metadata`` itself (only ``name`` and
#: ``generateName`` may be specified there) and publishes ObjectMeta's own instead.
EXEMPT = {"Region.metadata", "Tenant.metadata"}


def crd(kind: str) -> dict[str, Any]:
    path = CRDS / f"{kind.lower()}s.yaml"
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    return doc


def schema_of(kind: str) -> dict[str, Any]:
    (version,) = crd(kind)["spec"]["versions"]
    found: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return found


def schemas(node: Mapping[str, Any], path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every schema below ``node`` that documents a field: properties, items, map values."""
    for name, child in (node.get("properties") or {}).items():
        yield f"{path}.{name}", child
        yield from schemas(child, f"{path}.{name}")
    items = node.get("items")
    if isinstance(items, Mapping):
        yield f"{path}[]", items
        yield from schemas(items, f"{path}[]")
    values = node.get("additionalProperties")
    if isinstance(values, Mapping):
        yield f"{path}.<key>", values
        yield from schemas(values, f"{path}.<key>")


def documented(node: Mapping[str, Any]) -> bool:
    text = node.get("description")
    return isinstance(text, str) and bool(text.strip())


def undocumented(kind: str) -> list[str]:
    root = schema_of(kind)
    found = [(kind, root), *schemas(root, kind)]
    return [path for path, node in found if path not in EXEMPT and not documented(node)]


@pytest.mark.parametrize("kind", ["Region", "Tenant"])
def test_every_field_of_the_resource_has_a_description(kind: str) -> None:
    assert undocumented(kind) == []


def test_the_walk_finds_nested_fields_so_an_empty_list_means_something() -> None:
    paths = {path for path, _ in schemas(schema_of("Tenant"), "Tenant")}
    assert {
        "Tenant.spec.quotas.maxObjectBytes",
        "Tenant.spec.rateLimits.perTenant.burst",
        "Tenant.spec.collections[].upgrades[].rename.<key>",
        "Tenant.status.conditions[].reason",
        "Tenant.spec.worker.resources.limits.<key>",
    } <= paths


def test_a_field_without_a_description_is_reported_by_its_path() -> None:
    schema = {
        "type": "object",
        "description": "root",
        "properties": {"spec": {"type": "object", "properties": {"quiet": {"type": "string"}}}},
    }
    missing = [path for path, node in schemas(schema, "X") if not documented(node)]
    assert missing == ["X.spec", "X.spec.quiet"]


def test_quota_descriptions_give_the_unit_and_the_default() -> None:
    quotas = schema_of("Tenant")["properties"]["spec"]["properties"]["quotas"]["properties"]
    assert "Default 1000000" in quotas["maxObjects"]["description"]
    for field, default in (("maxBytes", "10Gi"), ("maxObjectBytes", "256Ki")):
        text = quotas[field]["description"]
        assert "quantity" in text and f"Default {default}" in text


@pytest.mark.kube
def test_the_api_server_publishes_the_descriptions_kubectl_explain_shows(
    kube: KubeCluster,
) -> None:
    path = "/openapi/v3/apis/stowage.dev/v1alpha1"
    # The API server publishes a new CRD's OpenAPI a moment after accepting it.
    eventually(lambda: kube.http.get(path).status_code == 200, timeout=30, what=path)
    document = kube.request("GET", path)
    published = document["components"]["schemas"]["dev.stowage.v1alpha1.Tenant"]
    quotas = published["properties"]["spec"]["properties"]["quotas"]
    written = schema_of("Tenant")["properties"]["spec"]["properties"]["quotas"]
    assert quotas["description"] == written["description"]
    assert (
        quotas["properties"]["maxObjectBytes"]["description"]
        == written["properties"]["maxObjectBytes"]["description"]
    )
