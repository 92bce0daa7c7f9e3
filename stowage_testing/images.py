"""The container images hack/build-image.sh builds, and putting them and the chart in a registry.

``make image`` (``hack/build-image.sh``) builds the project's image from its
Dockerfile with buildah, the Kubernetes pause image and the chart's Redis
(Debian's redis-server on the same base), into OCI archives
under ``$STOWAGE_TOOLS_DIR/images`` keyed by their inputs. The script itself
says where (``--where``), so the key is computed in one place. Under
``CI=true`` a missing archive fails the test (``hack/test-deps.sh`` builds
them); elsewhere it is built on demand, which after a source change rebuilds
only the project's layers.

Pushing uses the real tools: ``skopeo copy`` for images and ``helm package`` +
``helm push`` for the chart, to a registry from ``stowage_testing.registry``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stowage_testing.registry import Registry
from stowage_testing.tools import find_program, missing

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "hack" / "build-image.sh"
CHART = REPO / "charts" / "stowage"
HOW = "run `make image` (hack/build-image.sh builds it with buildah; needs root)"


@dataclass(frozen=True)
class BuiltImage:
    """An image in an OCI archive, as hack/build-image.sh recorded it in ``info.json``."""

    archive: Path
    #: The name it was built as, e.g. ``localhost/stowage:0.1.0``.
    reference: str
    #: The manifest's digest, ``sha256:…``: what a registry serves it by.
    digest: str
    compressed_bytes: int
    unpacked_bytes: int

    @property
    def name(self) -> str:
        """The reference without its tag (``localhost/stowage``)."""
        return self.reference.rsplit(":", 1)[0]

    @property
    def tag(self) -> str:
        return self.reference.rsplit(":", 1)[1]

    def manifest(self) -> dict[str, Any]:
        return _blob_json(self.archive, self.digest)

    def config(self) -> dict[str, Any]:
        """The image configuration: its ``config`` holds User, Env, Entrypoint, Cmd."""
        return _blob_json(self.archive, self.manifest()["config"]["digest"])


def _blob_json(archive: Path, digest: str) -> dict[str, Any]:
    with tarfile.open(archive) as tar:
        member = tar.extractfile(f"blobs/sha256/{digest.split(':', 1)[1]}")
        assert member is not None, f"{archive} has no blob {digest}"
        loaded: dict[str, Any] = json.loads(member.read())
        return loaded


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def built_image(target: str = "stowage") -> BuiltImage:
    """The cached archive of ``stowage`` (this tree's image), ``pause`` or ``redis``.

    Under CI a missing one fails the test naming ``make image``; elsewhere it is built now.
    """
    where = subprocess.run(
        [str(BUILD), "--where", target], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    archive = Path(where.splitlines()[-1])
    info_file = archive.parent / "info.json"
    if not (archive.is_file() and info_file.is_file()):
        if _in_ci():
            missing(f"the {target} image of this tree ({archive})", HOW)
        built = subprocess.run(
            [str(BUILD), target], stdout=subprocess.PIPE, text=True, check=False, timeout=3600
        )
        if built.returncode != 0:
            missing(f"the {target} image (hack/build-image.sh {target} failed)", HOW)
    info = json.loads(info_file.read_text())
    return BuiltImage(
        archive=archive,
        reference=info["reference"],
        digest=info["digest"],
        compressed_bytes=int(info["compressed_bytes"]),
        unpacked_bytes=int(info["unpacked_bytes"]),
    )


def _skopeo() -> Path:
    found = find_program("skopeo")
    if found is None:
        missing("skopeo", "install it (Debian: apt-get install skopeo)")
        raise AssertionError("unreachable")
    return found


def _tls_args(registry: Registry, direction: str) -> list[str]:
    """skopeo's options to reach ``registry`` as ``--src-…`` or ``--dest-…``."""
    if registry.cert_dir is not None:
        return [f"--{direction}-cert-dir", str(registry.cert_dir)]
    return [f"--{direction}-tls-verify=false"]


def push_image(image: BuiltImage, registry: Registry, repository: str, tag: str) -> str:
    """Copy the archive to ``registry/repository:tag``; the digest the registry stored."""
    digest_file = image.archive.parent / f".pushed-{os.getpid()}"
    try:
        subprocess.run(
            [
                str(_skopeo()), "copy", "--quiet", *_tls_args(registry, "dest"),
                "--digestfile", str(digest_file),
                f"oci-archive:{image.archive}", f"docker://{registry.address}/{repository}:{tag}",
            ],
            capture_output=True, text=True, check=True, timeout=600,
        )  # fmt: skip
        return digest_file.read_text().strip()
    finally:
        digest_file.unlink(missing_ok=True)


def pull_image(registry: Registry, repository: str, digest: str, destination: Path) -> Path:
    """Copy ``registry/repository@digest`` into an OCI layout directory; its path."""
    subprocess.run(
        [
            str(_skopeo()), "copy", "--quiet", *_tls_args(registry, "src"),
            f"docker://{registry.address}/{repository}@{digest}", f"oci:{destination}:pulled",
        ],
        capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    return destination


@dataclass(frozen=True)
class PushedChart:
    """The chart as ``helm push`` reported it: ``oci://host/charts/stowage`` and its digest."""

    url: str
    version: str
    digest: str


def push_chart(helm: Path, home: Path, registry: Registry, workdir: Path) -> PushedChart:
    """``helm package`` the chart and ``helm push`` it to ``oci://registry/charts``.

    ``home`` holds helm's config, cache and data, so nothing of the user's is read.
    """
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    workdir.mkdir(parents=True, exist_ok=True)

    def helm_run(*args: str) -> str:
        done = subprocess.run(
            [str(helm), *args], env=env, capture_output=True, text=True, check=False, timeout=120
        )
        assert done.returncode == 0, f"helm {' '.join(args)}: {done.stderr}"
        return done.stdout + done.stderr

    packaged = helm_run("package", str(CHART), "--destination", str(workdir))
    package = Path(packaged.strip().splitlines()[-1].rsplit(" ", 1)[-1])
    tls = ["--ca-file", str(registry.ca_file)] if registry.ca_file else ["--plain-http"]
    pushed = helm_run("push", str(package), f"oci://{registry.address}/charts", *tls)
    found = re.search(r"Pushed: (\S+):(\S+)\s+Digest: (sha256:[0-9a-f]{64})", pushed)
    assert found, pushed
    return PushedChart(f"oci://{found.group(1)}", found.group(2), found.group(3))


def layout_of(image: BuiltImage, destination: Path) -> Path:
    """The archive's OCI layout, extracted into ``destination`` (an OCI archive is a tar of one)."""
    destination.mkdir(parents=True, exist_ok=True)
    with tarfile.open(image.archive) as tar:
        tar.extractall(destination, filter="data")
    return destination


def unpack(layout: Path, rootfs: Path, image_ref: str = "pulled") -> dict[str, Any]:
    """Unpack the image ``image_ref`` of an OCI layout into ``rootfs``; its configuration.

    Layers are applied in order with GNU tar, numeric owners kept; a layer's whiteouts
    (``.wh.NAME``, ``.wh..wh..opq``) remove what the layers below it left there.
    """
    index = json.loads((layout / "index.json").read_text())
    [descriptor] = [
        m
        for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == image_ref
    ]

    def blob(digest: str) -> Path:
        return layout / "blobs" / "sha256" / digest.split(":", 1)[1]

    manifest = json.loads(blob(descriptor["digest"]).read_text())
    rootfs.mkdir(parents=True, exist_ok=True)
    for layer in manifest["layers"]:
        _apply_layer(blob(layer["digest"]), rootfs)
    config: dict[str, Any] = json.loads(blob(manifest["config"]["digest"]).read_text())
    return config


def _apply_layer(layer: Path, rootfs: Path) -> None:
    names = subprocess.run(
        ["tar", "-tf", str(layer)], capture_output=True, text=True, check=True, timeout=300
    ).stdout.splitlines()
    for name in names:
        path = Path(name.removeprefix("./"))
        if not path.name.startswith(".wh."):
            continue
        parent = rootfs / path.parent
        if path.name == ".wh..wh..opq":
            for child in parent.iterdir() if parent.is_dir() else ():
                _remove(child)
        else:
            _remove(parent / path.name.removeprefix(".wh."))
    subprocess.run(
        ["tar", "-xf", str(layer), "-C", str(rootfs), "--numeric-owner", "--same-permissions",
         "--exclude=.wh.*"],
        capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
