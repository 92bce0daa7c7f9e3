"""The Python names of the custom resources match the CRDs the chart installs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from stowage import crd

CRDS = Path(__file__).resolve().parents[2] / "charts" / "stowage" / "crds"


@pytest.mark.parametrize(
    ("kind", "plural", "scope"),
    [
        (crd.TENANT_KIND, crd.TENANT_PLURAL, "Namespaced"),
        (crd.REGION_KIND, crd.REGION_PLURAL, "Cluster"),
    ],
)
def test_the_chart_crds_declare_the_group_version_kind_and_plural_the_code_uses(
    kind: str, plural: str, scope: str
) -> None:
    doc: dict[str, Any] = yaml.safe_load((CRDS / f"{plural}.yaml").read_text())
    spec = doc["spec"]
    assert doc["metadata"]["name"] == f"{plural}.{crd.GROUP}"
    assert spec["group"] == crd.GROUP
    assert (spec["names"]["kind"], spec["names"]["plural"], spec["scope"]) == (kind, plural, scope)
    [version] = spec["versions"]
    assert version["name"] == crd.VERSION and version["served"] and version["storage"]


def test_collection_paths_are_namespaced_or_cluster_wide() -> None:
    assert crd.API_VERSION == "stowage.dev/v1alpha1"
    assert (
        crd.collection_path(crd.TENANT_PLURAL, "acme")
        == "/apis/stowage.dev/v1alpha1/namespaces/acme/tenants"
    )
    assert crd.collection_path(crd.REGION_PLURAL) == "/apis/stowage.dev/v1alpha1/regions"
