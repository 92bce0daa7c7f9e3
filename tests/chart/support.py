"""Helpers for the chart tier: the real ``helm`` on the chart, and reading what it rendered."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stowage_testing.kube import KubeCluster, running_kube
from stowage_testing.tools import missing

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "stowage"
PRODUCTION_VALUES = CHART / "examples" / "production.yaml"
PROMETHEUS_OPERATOR_VERSION_FILE = REPO / "hack" / "prometheus-operator" / "version.env"
#: The monitoring.coreos.com kinds the chart renders.
MONITORING_CRDS = ("servicemonitors", "podmonitors", "prometheusrules")


class HelmError(AssertionError):
    """helm exited non-zero; the message holds its stderr."""

    def __init__(self, args: Sequence[str], result: subprocess.CompletedProcess[str]) -> None:
        self.stderr = result.stderr
        self.stdout = result.stdout
        super().__init__(f"helm {' '.join(args)} exited {result.returncode}:\n{result.stderr}")


@dataclass(frozen=True)
class Helm:
    """The real helm binary, with its own config/cache/data homes (nothing of the user's)."""

    binary: Path
    home: Path
    kubeconfig: Path | None = None

    def for_cluster(self, kubeconfig: Path) -> Helm:
        return Helm(self.binary, self.home, kubeconfig)

    def run(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
        }
        if self.kubeconfig is not None:
            env["KUBECONFIG"] = str(self.kubeconfig)
        result = subprocess.run(
            [str(self.binary), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise HelmError(args, result)
        return result

    def template(
        self,
        *values_files: Path,
        sets: Mapping[str, str] | None = None,
        release: str = "stowage",
        namespace: str = "stowage-system",
        extra: Iterable[str] = (),
    ) -> list[dict[str, Any]]:
        """``helm template`` the chart; the rendered documents (hooks and tests included)."""
        out = self.run(
            "template",
            release,
            str(CHART),
            "--namespace",
            namespace,
            *value_args(*values_files, sets=sets),
            *extra,
        ).stdout
        return [d for d in yaml.safe_load_all(out) if d]


def value_args(*values_files: Path, sets: Mapping[str, str] | None = None) -> list[str]:
    args: list[str] = []
    for path in values_files:
        args += ["--values", str(path)]
    for key, value in (sets or {}).items():
        args += ["--set", f"{key}={value}"]
    return args


def find(docs: Iterable[Mapping[str, Any]], kind: str, name_suffix: str = "") -> dict[str, Any]:
    """The one document of ``kind`` whose name ends with ``name_suffix``."""
    found = [
        dict(d) for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(name_suffix)
    ]
    assert len(found) == 1, (
        f"expected one {kind} *{name_suffix}, got {[f['metadata']['name'] for f in found]}"
    )
    return found[0]


def kinds(docs: Iterable[Mapping[str, Any]]) -> set[str]:
    return {d["kind"] for d in docs}


def container(workload: Mapping[str, Any], name: str) -> dict[str, Any]:
    spec = pod_spec(workload)
    for c in spec["containers"]:
        if c["name"] == name:
            return dict(c)
    raise AssertionError(f"no container {name} in {workload['metadata']['name']}")


def pod_spec(workload: Mapping[str, Any]) -> dict[str, Any]:
    if workload["kind"] == "Pod":
        return dict(workload["spec"])
    return dict(workload["spec"]["template"]["spec"])


def plain_env(c: Mapping[str, Any]) -> dict[str, str]:
    """A container's literal environment (entries with ``value``)."""
    return {e["name"]: e["value"] for e in c.get("env") or [] if "value" in e}


def pod_templates(docs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every pod the documents would run: Pods, and the template of every workload."""
    pods: list[dict[str, Any]] = []
    for d in docs:
        if d["kind"] == "Pod":
            pods.append({"metadata": d["metadata"], "spec": d["spec"]})
        elif d["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
            template = d["spec"]["template"]
            pods.append(
                {
                    "metadata": {**template.get("metadata", {}), "name": d["metadata"]["name"]},
                    "spec": template["spec"],
                }
            )
    return pods


def prometheus_operator_crds_dir() -> Path:
    """Where hack/fetch-prometheus-operator-crds.sh caches the pinned CRDs; fails if absent."""
    pins = dict(
        line.split("=", 1)
        for line in PROMETHEUS_OPERATOR_VERSION_FILE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    version = pins["PROMETHEUS_OPERATOR_VERSION"].strip()
    root = Path(os.environ.get("STOWAGE_TOOLS_DIR") or "/var/cache/stowage/tools")
    directory = root / f"prometheus-operator-{version}"
    for kind in MONITORING_CRDS:
        if not (directory / f"monitoring.coreos.com_{kind}.yaml").is_file():
            missing(
                f"the Prometheus Operator {version} CRDs",
                "run hack/fetch-prometheus-operator-crds.sh",
            )
    return directory


@contextmanager
def running_cluster() -> Iterator[KubeCluster]:
    """A real control plane with the pinned Prometheus Operator CRDs applied."""
    crds = prometheus_operator_crds_dir()
    with running_kube() as cluster:
        for kind in MONITORING_CRDS:
            cluster.apply((crds / f"monitoring.coreos.com_{kind}.yaml").read_text())
        yield cluster


def restricted_namespace(kube: KubeCluster, name: str) -> str:
    """A namespace where PodSecurity admission enforces (and warns on) ``restricted``."""
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": name,
                "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                    "pod-security.kubernetes.io/warn": "restricted",
                    "pod-security.kubernetes.io/warn-version": "latest",
                },
            },
        }
    )
    return name
