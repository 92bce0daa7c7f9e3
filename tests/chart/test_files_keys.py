"""The master key of file links: a Secret in the release namespace, mounted where the gateway
reads it, kept across upgrades by ``lookup`` against a real API server, rotated on demand
with the old key kept as ``previous``; a key derived from it signs links the gateway checks."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.files import CURRENT_KEY, PREVIOUS_KEY, ROTATED_AT, SigningKeys
from gateway.files._keys import MIN_KEY_LENGTH
from gateway.files._signing import Grant, Method, check, query
from stowage_testing.kube import KubeCluster
from tests.chart.support import Helm, container, find, pod_spec

pytestmark = pytest.mark.helm

SECRET = "stowage-files-keys"


def _flag(args: list[str], name: str) -> str:
    [value] = [a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")]
    return value


def _mounted_secret(docs: list[dict[str, Any]]) -> tuple[Path, str]:
    """Where the gateway reads its keys (the flag), checked against the mount; the Secret's name."""
    gateway = find(docs, "Deployment", "-gateway")
    c = container(gateway, "gateway")
    keys_dir = Path(_flag(c["args"], "files-keys-dir"))
    [mount] = [m for m in c["volumeMounts"] if Path(m["mountPath"]) == keys_dir]
    assert mount["readOnly"]
    [volume] = [v for v in pod_spec(gateway)["volumes"] if v["name"] == mount["name"]]
    return keys_dir, volume["secret"]["secretName"]


def _kubelet_view(data: dict[str, str], into: Path) -> Path:
    """The Secret's keys as files, as the kubelet mounts them."""
    into.mkdir()
    for key, value in data.items():
        (into / key).write_bytes(base64.b64decode(value))
    return into


def test_the_gateway_mounts_the_charts_master_key_where_its_flag_points(
    helm: Helm, tmp_path: Path
) -> None:
    docs = helm.template(sets={"gateway.files.linkSeconds": "600"})
    _, name = _mounted_secret(docs)
    secret = find(docs, "Secret", "-files-keys")
    assert secret["metadata"]["name"] == name == SECRET
    assert secret["metadata"]["namespace"] == "stowage-system"  # never a tenant namespace
    assert set(secret["data"]) == {CURRENT_KEY}
    master = base64.b64decode(secret["data"][CURRENT_KEY])
    assert len(master) >= MIN_KEY_LENGTH
    args = container(find(docs, "Deployment", "-gateway"), "gateway")["args"]
    assert _flag(args, "file-link-seconds") == "600"

    # The gateway reading that mount signs and verifies each tenant's links with its own key.
    keys = SigningKeys(_kubelet_view(secret["data"], tmp_path / "keys"), 600)
    grant = Grant("acme", "0" * 32, "f" * 32, Method.GET, int(time.time()) + 60)
    sig = query(keys.signing("acme"), grant)["s"]
    check(keys.verifying("acme", grant.expires), grant, sig, Method.GET, time.time())
    assert keys.signing("acme") != keys.signing("globex")


def test_an_existing_secret_is_mounted_instead_and_none_is_made(helm: Helm) -> None:
    docs = helm.template(sets={"gateway.files.existingSecret": "vault-files-keys"})
    assert _mounted_secret(docs)[1] == "vault-files-keys"
    assert not [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == SECRET]
    without_gateway = helm.template(sets={"gateway.enabled": "false"})
    assert not [d for d in without_gateway if d["metadata"]["name"] == SECRET]


@pytest.mark.kube
def test_the_key_survives_upgrades_and_a_new_rotation_value_rotates_it_once(
    kube: KubeCluster, cluster_helm: Helm, tmp_path: Path
) -> None:
    namespace = "files-keys"
    kube.create_namespace(namespace)

    def rendered(rotation: str = "") -> dict[str, Any]:
        """The Secret as an upgrade would render it now: `lookup` reads the real API server."""
        docs = cluster_helm.template(
            namespace=namespace,
            sets={"gateway.files.rotation": rotation},
            extra=("--dry-run=server", "--show-only", "templates/files-keys.yaml"),
        )
        secret = find(docs, "Secret", "-files-keys")
        kube.apply(secret)
        return secret

    first = rendered()
    assert rendered()["data"] == first["data"]  # an upgrade keeps the key

    before = time.time()
    rotated = rendered("2026-12")
    data = rotated["data"]
    assert set(data) == {CURRENT_KEY, PREVIOUS_KEY, ROTATED_AT}
    assert data[PREVIOUS_KEY] == first["data"][CURRENT_KEY] != data[CURRENT_KEY]
    assert before - 1 <= int(base64.b64decode(data[ROTATED_AT])) <= time.time() + 1
    assert rendered("2026-12")["data"] == data  # the same value does not rotate again

    # A link signed with the old key before the rotation is still good; a later one is not.
    keys = SigningKeys(_kubelet_view(data, tmp_path / "keys"), 900)
    old = SigningKeys(_kubelet_view(first["data"], tmp_path / "old"), 900)
    issued = Grant("acme", "0" * 32, "f" * 32, Method.GET, int(time.time()) + 900)
    check(keys.verifying("acme", issued.expires), issued, query(old.signing("acme"), issued)["s"],
          Method.GET, time.time())  # fmt: skip
    forged = Grant("acme", "0" * 32, "f" * 32, Method.GET, int(time.time()) + 3 * 3600)
    assert len(keys.verifying("acme", forged.expires)) == 1
