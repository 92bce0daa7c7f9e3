"""The chart mounts tenants' introspection client secrets where the gateway reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway._settings import GatewaySettings
from stowage.tenant_spec import parse_tenant_spec
from tests.chart.support import Helm, HelmError, container, find, pod_spec

pytestmark = pytest.mark.helm


def _secrets_dir(args: list[str]) -> Path | None:
    found = [a.split("=", 1)[1] for a in args if a.startswith("--secrets-dir=")]
    return Path(found[0]) if found else None


def test_introspection_secrets_are_mounted_under_the_gateways_secrets_dir(helm: Helm) -> None:
    docs = helm.template(sets={"gateway.introspectionSecrets": "{keycloak-introspection,okta}"})
    gateway = find(docs, "Deployment", "-gateway")
    c = container(gateway, "gateway")
    secrets_dir = _secrets_dir(c["args"])
    assert secrets_dir is not None
    # A Tenant's clientSecretRef names a Secret and a key; the gateway reads DIR/<name>/<key>.
    spec = parse_tenant_spec({"auth": {
        "issuer": "https://kc.example/realms/acme", "audience": "https://mcp.example/t/acme/mcp",
        "introspection": {
            "endpoint": "https://kc.example/realms/acme/protocol/openid-connect/token/introspect",
            "clientId": "stowage-gateway",
            "clientSecretRef": {"name": "keycloak-introspection", "key": "client-secret"},
        },
    }})  # fmt: skip
    assert spec.auth is not None and spec.auth.introspection is not None
    ref = spec.auth.introspection.client_secret_ref
    assert ref is not None
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(gateway)["volumes"] if "secret" in v}
    by_secret = {
        volumes[name]["secret"]["secretName"]: Path(m["mountPath"])
        for name, m in mounts.items()
        if name in volumes and m.get("readOnly")
    }
    assert by_secret["keycloak-introspection"] == secrets_dir / ref.name
    assert by_secret["okta"] == secrets_dir / "okta"
    assert GatewaySettings().secrets_dir is None  # nothing mounted, nothing named by default

    plain = container(find(helm.template(), "Deployment", "-gateway"), "gateway")
    assert _secrets_dir(plain["args"]) is None
    with pytest.raises(HelmError, match="introspectionSecrets"):
        helm.template(sets={"gateway.introspectionSecrets": "{Not_A_Secret}"})
