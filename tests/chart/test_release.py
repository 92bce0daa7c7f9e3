"""``make release``: the chart packaged, signed, pushed to an OCI registry and pulled back verified.

A real registry (CNCF distribution, built from its Go module by
hack/build-release-tools.sh) runs on loopback; an OpenPGP key is made for the
test with gpg. ``make release`` must leave a package whose provenance verifies
with that key, in the registry, with its README (generated from values.yaml by
helm-docs), changelog, icon, Artifact Hub annotations and example values.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from stowage_testing.registry import release_tools, running_registry
from tests.chart.support import CHART, REPO, Helm, HelmError

pytestmark = pytest.mark.helm


@dataclass(frozen=True)
class SigningKey:
    name: str
    secret_keyring: Path
    public_keyring: Path


def make_key(home: Path, name: str) -> SigningKey:
    """An RSA signing key made by gpg, exported as the legacy keyrings helm reads."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    env = {"GNUPGHOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}

    def gpg(*args: str) -> bytes:
        return subprocess.run(
            ["gpg", "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", "", *args],
            env=env,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout

    secret, public = home / "secring.gpg", home / "pubring.gpg"
    try:
        gpg("--quick-gen-key", name, "rsa2048", "sign", "never")
        secret.write_bytes(gpg("--export-secret-keys", name))
        public.write_bytes(gpg("--export", name))
    finally:
        # gpg starts an agent for the home, which outlives it: stop it with the key made.
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, check=False, timeout=30)
    return SigningKey(name, secret, public)


@pytest.fixture(scope="module")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> SigningKey:
    return make_key(tmp_path_factory.mktemp("gpg") / "home", "Stowage Release <release@test>")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real OCI registry on loopback (plain HTTP); its host:port."""
    with running_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running.address


def test_make_release_pushes_a_signed_chart_that_pulls_back_verified(
    helm: Helm, signing_key: SigningKey, registry: str, tmp_path: Path
) -> None:
    repo = f"oci://{registry}/charts"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(helm.home),
        "HELM_CACHE_HOME": str(helm.home / "cache"),
        "HELM_CONFIG_HOME": str(helm.home / "config"),
        "HELM_DATA_HOME": str(helm.home / "data"),
        "HELM": str(helm.binary),
        "HELM_DOCS": str(release_tools() / "helm-docs"),
        "CHART_REPO": repo,
        "SIGN_KEY": signing_key.name,
        "KEYRING": str(signing_key.secret_keyring),
        "PUBLIC_KEYRING": str(signing_key.public_keyring),
        "PLAIN_HTTP": "true",
        "DIST": str(tmp_path / "dist"),
    }
    done = subprocess.run(
        ["make", "--no-print-directory", "-s", "release"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    package = Path(done.stdout.strip().splitlines()[-1])
    version = yaml.safe_load((CHART / "Chart.yaml").read_text())["version"]
    assert package.name == f"stowage-{version}.tgz"
    assert "Signed by: Stowage Release <release@test>" in done.stderr

    # Anyone with the public key pulls it verified; with another key it is refused.
    for directory in ("pull", "no"):
        (tmp_path / directory).mkdir()
    pulled = helm.run(
        "pull", f"{repo}/stowage", "--version", version, "--verify", "--plain-http",
        "--keyring", str(signing_key.public_keyring), "--destination", str(tmp_path / "pull"),
    )  # fmt: skip
    print(f"\n$ helm pull {repo}/stowage --version {version} --verify --plain-http ...")
    print(pulled.stdout + pulled.stderr)
    stranger = make_key(tmp_path / "other", "Someone Else <else@test>")
    with pytest.raises(HelmError, match=r"openpgp|signature|key"):
        helm.run(
            "pull", f"{repo}/stowage", "--version", version, "--verify", "--plain-http",
            "--keyring", str(stranger.public_keyring), "--destination", str(tmp_path / "no"),
        )  # fmt: skip

    # What the package holds besides the templates.
    with tarfile.open(tmp_path / "pull" / package.name) as archive:
        names = set(archive.getnames())
        chart_yaml = yaml.safe_load(archive.extractfile("stowage/Chart.yaml").read())  # type: ignore[union-attr]
    for shipped in (
        "README.md", "CHANGELOG.md", "icon.svg", "values.schema.json",
        "examples/production.yaml", "examples/local.yaml", "examples/namespaced.yaml",
    ):  # fmt: skip
        assert f"stowage/{shipped}" in names, shipped
    assert "stowage/README.md.gotmpl" not in names
    assert chart_yaml["icon"].endswith("/charts/stowage/icon.svg")
    annotations = chart_yaml["annotations"]
    for key in ("artifacthub.io/changes", "artifacthub.io/crds", "artifacthub.io/license"):
        assert yaml.safe_load(annotations[key]), key
    assert "### Upgrading" in (CHART / "CHANGELOG.md").read_text()


def test_the_chart_readme_is_generated_from_the_values_comments() -> None:
    generated = subprocess.run(
        [
            str(release_tools() / "helm-docs"), "--dry-run", "--chart-search-root", str(CHART),
            "--template-files", "README.md.gotmpl", "--sort-values-order", "file",
        ],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert generated == (CHART / "README.md").read_text(), "stale: run make chart-docs"
    for key in (
        "networkPolicy.prometheus.namespace",
        "operator.rbac.scope",
        "gateway.issuerCA.key",
    ):
        assert f"| {key} |" in generated, key
