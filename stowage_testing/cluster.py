"""A single-node Kubernetes cluster from real parts, for tests that need pods to run.

The control plane is ``stowage_testing/kube.py``'s etcd + kube-apiserver, started
with ``nodes=True``. Beside it run kube-controller-manager, kube-scheduler,
containerd + runc with the CNI bridge, host-local, loopback and portmap plugins,
the kubelet, kube-proxy (iptables mode), kube-router's NetworkPolicy controller
and CoreDNS (a Deployment in ``kube-system``, as a cluster runs it).

The node lives in namespaces of its own. One holder process owns a network and a
mount namespace; every node process (containerd and its shims, the kubelet,
kube-proxy, kube-router, the controller-manager and the scheduler) enters both.
The network namespace reaches the machine only through a veth pair whose two ends
share a /30: the machine's end carries the apiserver's address, the node's end is
the node's InternalIP. There is no default route, so the node, its pods and its
Services (``10.244.0.0/16``, ``10.96.0.0/16``, present only in that namespace)
have no way to the machine's uplink. The mount namespace holds the kubelet's
volume mounts, containerd's snapshots and pod network namespaces, and a private
``/run`` and ``/var/lib`` (CNI's cache, shim sockets), so nothing lands in the
machine's own.

Pod cgroups go under a cgroup root of the cluster's own (cgroupfs driver: this
machine's PID 1 is not systemd). Teardown stops the node's components, kills
every process in that cgroup root, stops containerd and its shims, stops the
control plane, ends the holder (which takes the namespaces, their iptables rules,
ipsets, mounts and the veth pair with it), removes the cgroups and deletes the
work directory. Every node process dies with the test process however it ends
(``PR_SET_PDEATHSIG``); the shims, which containerd detaches, and the containers
of a cluster whose test process was killed are swept by the next cluster's start.

Images come from OCI archives imported into containerd (nothing is pulled): the
cluster builds its own from the cached static binaries, ``PAUSE_IMAGE`` (the pod
sandbox), ``PROBE_IMAGE`` (network probes for tests) and CoreDNS's;
``Cluster.import_image`` loads any other archive.

The binaries come from ``hack/build-kube-tools.sh`` and
``hack/build-cluster-tools.sh``; containerd, runc, the CNI plugins, iptables and
ipset from Debian's packages (``hack/test-deps.sh``).
"""

from __future__ import annotations

import functools
import hashlib
import io
import ipaddress
import json
import os
import random
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stowage_testing.kube import REPO, SERVICE_RANGE, KubeCluster, KubeError, running_kube
from stowage_testing.tools import die_with_parent, find_program, missing, terminate

__all__ = [
    "CLUSTER_DOMAIN",
    "DNS_SERVICE_IP",
    "PAUSE_IMAGE",
    "POD_RANGE",
    "PROBE_IMAGE",
    "RESTRICTED_CONTAINER",
    "RESTRICTED_POD",
    "Cluster",
    "PodOutcome",
    "cluster_tools_bin_dir",
    "running_cluster",
    "write_image_archive",
]

HOW = "run `make test-deps` (hack/build-cluster-tools.sh builds them from the Go module proxy)"
DEBIAN = "install Debian's containerd, runc, containernetworking-plugins, iptables and ipset"

POD_RANGE = "10.244.0.0/16"
DNS_SERVICE_IP = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
PAUSE_IMAGE = "stowage.test/pause:1"
PROBE_IMAGE = "stowage.test/probe:1"
COREDNS_IMAGE = "stowage.test/coredns:1"
NODE_NAME = "stowage-node"
CNI_PLUGINS = Path("/usr/lib/cni")

#: The /30 links between the machine and a node are taken from here, one per cluster.
_LINK_RANGE = ipaddress.IPv4Network("10.213.0.0/16")


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (REPO / "hack" / "kube-tools" / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            pins[key.strip()] = value.strip()
    return pins


def cluster_tools_bin_dir() -> Path:
    """Where hack/build-cluster-tools.sh puts the binaries for the pinned versions."""
    pins = _pins()
    here = REPO / "hack" / "kube-tools"
    sources = [here / "probe" / "go.mod", here / "probe" / "main.go", here / "coredns" / "main.go"]
    digest = hashlib.sha256(b"".join(source.read_bytes() for source in sources))
    tag = (
        f"cluster-kube-{pins['KUBERNETES_VERSION']}-coredns-{pins['COREDNS_VERSION']}"
        f"-kube-router-{pins['KUBE_ROUTER_VERSION']}-src-{digest.hexdigest()[:12]}"
    )
    root = Path(os.environ.get("STOWAGE_TOOLS_DIR") or "/var/cache/stowage/tools")
    return root / tag / "bin"


@dataclass(frozen=True)
class _Tools:
    kubelet: Path
    kube_proxy: Path
    controller_manager: Path
    scheduler: Path
    coredns: Path
    kube_router: Path
    probe: Path
    containerd: Path
    ctr: Path


def _find_tools() -> _Tools:
    cached = [cluster_tools_bin_dir()]

    def need(name: str, dirs: Sequence[Path], how: str) -> Path:
        found = find_program(name, dirs)
        if found is None:
            missing(name, how)
            raise AssertionError("unreachable")
        return found

    for name in ("containerd-shim-runc-v2", "runc", "iptables", "ipset", "nsenter", "unshare"):
        need(name, [Path("/usr/sbin"), Path("/sbin")], DEBIAN)
    for plugin in ("bridge", "host-local", "loopback", "portmap"):
        need(plugin, [CNI_PLUGINS], DEBIAN)
    return _Tools(
        kubelet=need("kubelet", cached, HOW),
        kube_proxy=need("kube-proxy", cached, HOW),
        controller_manager=need("kube-controller-manager", cached, HOW),
        scheduler=need("kube-scheduler", cached, HOW),
        coredns=need("coredns", cached, HOW),
        kube_router=need("kube-router", cached, HOW),
        probe=need("probe", cached, HOW),
        containerd=need("containerd", [], DEBIAN),
        ctr=need("ctr", [], DEBIAN),
    )


# -- images --------------------------------------------------------------------------------


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_image_archive(
    path: Path, reference: str, files: Mapping[str, Path], entrypoint: Sequence[str]
) -> Path:
    """An OCI archive at ``path`` of one image: ``files`` (path in image → file) on scratch."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        for name, source in sorted(files.items()):
            info = tar.gettarinfo(str(source), arcname=name.lstrip("/"))
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            with source.open("rb") as f:
                tar.addfile(info, f)
    layer_bytes = layer.getvalue()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": list(entrypoint), "User": "65534:65534"},
            "rootfs": {"type": "layers", "diff_ids": [_sha256(layer_bytes)]},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": _sha256(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": _sha256(layer_bytes),
                    "size": len(layer_bytes),
                }
            ],
        }
    ).encode()
    index = json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": _sha256(manifest),
                    "size": len(manifest),
                    "platform": {"architecture": "amd64", "os": "linux"},
                    "annotations": {
                        "io.containerd.image.name": reference,
                        "org.opencontainers.image.ref.name": reference.rpartition(":")[2],
                    },
                }
            ],
        }
    ).encode()
    entries = {
        "oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
        "index.json": index,
        **{"blobs/sha256/" + _sha256(blob)[7:]: blob for blob in (layer_bytes, config, manifest)},
    }
    with tarfile.open(path, mode="w") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


# -- processes in the node's namespaces ---------------------------------------------------


@dataclass
class _Node:
    """The holder of the node's namespaces and the processes started in them."""

    holder: subprocess.Popen[bytes]
    workdir: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def enter(self) -> list[str]:
        pid = self.holder.pid
        return ["nsenter", f"--net=/proc/{pid}/ns/net", f"--mount=/proc/{pid}/ns/mnt", "--"]

    def run(self, argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.enter, *argv], check=check, capture_output=True, text=True, timeout=60
        )

    def start(self, name: str, argv: Sequence[str]) -> subprocess.Popen[bytes]:
        with (self.workdir / "logs" / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen(
                [*self.enter, *argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )
        self.procs[name] = proc
        return proc

    def check_running(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                log = (self.workdir / "logs" / f"{name}.log").read_text(errors="replace")
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{log[-4000:]}")


def _pick_link() -> ipaddress.IPv4Network:
    """A /30 of _LINK_RANGE that no interface of this machine uses yet."""
    used = subprocess.run(
        ["ip", "-4", "-o", "addr", "show"], check=True, capture_output=True, text=True
    ).stdout
    links = list(_LINK_RANGE.subnets(new_prefix=30))
    random.shuffle(links)
    for link in links:
        if f" {next(link.hosts())}/" not in used:
            return link
    raise RuntimeError(f"no free /30 left in {_LINK_RANGE}")


def _start_holder(workdir: Path, probe: Path) -> _Node:
    """A process owning a new network and mount namespace, the node's home."""
    holder = subprocess.Popen(
        ["unshare", "--net", "--mount", "--propagation", "private", "--", str(probe), "pause"],
        preexec_fn=die_with_parent,
        env={"STOWAGE_CLUSTER": str(workdir)},  # how a later sweep knows it (_holder_alive)
    )
    (workdir / "holder.pid").write_text(str(holder.pid))
    node = _Node(holder=holder, workdir=workdir)
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + 10
    mine = os.readlink("/proc/self/ns/net")
    while os.readlink(f"/proc/{holder.pid}/ns/net") == mine or _exe(holder.pid) != probe:
        if holder.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the node's namespace holder did not start")
        time.sleep(0.02)
    return node


def _exe(pid: int) -> Path | None:
    try:
        return Path(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        return None


def _wire_node(node: _Node, link: ipaddress.IPv4Network, host_end: str) -> tuple[str, str]:
    """The veth pair, the node's sysctls and private mounts; (machine's, node's) address."""
    host_ip, node_ip = (str(address) for address in link.hosts())
    node_end = "stwnode"  # renamed eth0 inside the node's namespace
    peer = ["peer", "name", node_end, "netns", str(node.holder.pid)]
    subprocess.run(["ip", "link", "add", host_end, "type", "veth", *peer], check=True)
    subprocess.run(["ip", "addr", "add", f"{host_ip}/30", "dev", host_end], check=True)
    subprocess.run(["ip", "link", "set", host_end, "up"], check=True)
    script = f"""
set -e
ip link set lo up
ip link set {node_end} name eth0
ip addr add {node_ip}/30 dev eth0
ip link set eth0 up
echo 1 > /proc/sys/net/ipv4/ip_forward
echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables
echo 1 > /proc/sys/net/bridge/bridge-nf-call-ip6tables
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=755 tmpfs /var/lib
"""
    node.run(["sh", "-c", script])
    return host_ip, node_ip


# -- cgroups -------------------------------------------------------------------------------


def _cgroup_mounts() -> list[Path]:
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        before, _, after = line.partition(" - ")
        if after.split(" ")[0] in ("cgroup", "cgroup2"):
            mounts.append(Path(before.split(" ")[4]))
    return mounts


def _make_cgroup_root(name: str) -> None:
    for mount in _cgroup_mounts():
        path = mount / name.lstrip("/")
        path.mkdir(exist_ok=True)
        for knob in ("cpuset.cpus", "cpuset.mems"):
            if (mount / knob).exists():
                (path / knob).write_text((mount / knob).read_text())


def _cgroup_dirs(name: str) -> list[Path]:
    """Every cgroup under ``name`` in every hierarchy, deepest first (the kubelet and
    containerd may remove some while this walks)."""
    found: list[Path] = []
    for mount in _cgroup_mounts():
        for directory, _, _ in os.walk(mount / name.lstrip("/")):  # errors ignored
            found.append(Path(directory))
    return sorted(found, key=lambda path: len(path.parts), reverse=True)


def _cgroup_processes(name: str) -> set[int]:
    pids: set[int] = set()
    for directory in _cgroup_dirs(name):
        with suppress(OSError):
            pids.update(int(pid) for pid in (directory / "cgroup.procs").read_text().split())
    return pids


def _remove_cgroup_root(name: str) -> None:
    """Kill what still runs in the cgroups under ``name``, then remove them, deepest first."""
    _kill_all(lambda: _cgroup_processes(name), timeout=20)
    for directory in _cgroup_dirs(name):
        with suppress(OSError):
            directory.rmdir()


def _shim_addresses() -> dict[int, Path]:
    """Every containerd shim of this machine, by pid, with its containerd's socket."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError):
                argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
                if argv[0].endswith("containerd-shim-runc-v2") and "-address" in argv:
                    found[int(entry.name)] = Path(argv[argv.index("-address") + 1])
    return found


def _shims(workdir: Path) -> list[int]:
    """containerd's shims of the cluster in ``workdir``: they outlive containerd by design."""
    socket = workdir / "containerd.sock"
    return [pid for pid, address in _shim_addresses().items() if address == socket]


def _holder_alive(workdir: Path) -> bool:
    try:
        pid = int((workdir / "holder.pid").read_text())
        return f"{workdir}" in Path(f"/proc/{pid}/environ").read_text(errors="replace")
    except (OSError, ValueError):
        return False


def _sweep_stale() -> None:
    """Remove what clusters of test processes that died unstopped left: their containers,
    shims (and with them their namespaces), cgroups and work directories."""
    names = {
        cgroup.name for mount in _cgroup_mounts() for cgroup in mount.glob("stowage-cluster-*")
    }
    names.update(
        address.parent.name
        for address in _shim_addresses().values()
        if address.parent.name.startswith("stowage-cluster-")
        and address.parent.parent == Path(tempfile.gettempdir())
    )
    for name in names:
        workdir = Path(tempfile.gettempdir(), name)
        if not _holder_alive(workdir):
            _kill_all(functools.partial(_shims, workdir))
            _remove_cgroup_root(f"/{name}")
            shutil.rmtree(workdir, ignore_errors=True)


def _kill_all(listing: Callable[[], Iterable[int]], timeout: float = 10.0) -> None:
    """SIGKILL what ``listing`` names until it names nothing (or ``timeout`` passes)."""
    deadline = time.monotonic() + timeout
    while pids := list(listing()):
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)


def _namespace_processes(holder: int) -> list[int]:
    """Every process but the holder in the holder's mount namespace (node processes, shims)."""
    target = os.readlink(f"/proc/{holder}/ns/mnt")
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != holder:
            with suppress(OSError):
                if os.readlink(entry / "ns" / "mnt") == target:
                    found.append(int(entry.name))
    return found


# -- configuration files -------------------------------------------------------------------


def _containerd_config(workdir: Path, sandbox_image: str) -> str:
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""
version = 2
root = "{workdir}/containerd/root"
state = "{workdir}/containerd/state"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "{workdir}/containerd.sock"
[ttrpc]
  address = "{workdir}/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{workdir}/containerd/opt"

[{cri}]
  sandbox_image = "{sandbox_image}"
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  # Without CAP_SYS_RESOURCE (this machine withholds it) no process may lower its OOM
  # score below containerd's own; the kubelet asks -998 for sandboxes.
  restrict_oom_score_adj = true
  enable_selinux = false
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        SystemdCgroup = false
  [{cri}.registry]
    config_path = "{workdir}/registries"
  [{cri}.cni]
    bin_dir = "{CNI_PLUGINS}"
    conf_dir = "{workdir}/cni"
    max_conf_num = 1
"""


def _cni_config(workdir: Path, pod_cidr: str) -> dict[str, Any]:
    return {
        "cniVersion": "1.0.0",
        "name": "stowage",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": pod_cidr}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(workdir / "cni-ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def _kubelet_config(workdir: Path, cgroup_root: str, node_ip: str, ca: Path) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": node_ip,
        "readOnlyPort": 0,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca)},
        },
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": cgroup_root,
        "failCgroupV1": False,
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{workdir}/containerd.sock",
        "clusterDNS": [DNS_SERVICE_IP],
        "clusterDomain": CLUSTER_DOMAIN,
        "resolvConf": str(workdir / "resolv.conf"),
        "podLogsDir": str(workdir / "pod-logs"),
        "volumePluginDir": str(workdir / "volume-plugins"),
        "staticPodPath": "",
        "serializeImagePulls": False,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
    }


def _kube_proxy_config(kubeconfig: Path) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "mode": "iptables",
        "clusterCIDR": POD_RANGE,
        "hostnameOverride": NODE_NAME,
        "metricsBindAddress": "127.0.0.1:10249",
        "healthzBindAddress": "127.0.0.1:10256",
        # The node's namespace keeps the machine's conntrack settings.
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
    }


_COREFILE = f""".:53 {{
    errors
    health :8080
    ready :8181
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 30
}}
"""


def _coredns_documents() -> list[dict[str, Any]]:
    """CoreDNS as a cluster runs it: its RBAC, Corefile, Deployment and the kube-dns Service."""
    ns = "kube-system"
    labels = {"k8s-app": "kube-dns"}
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "coredns", "namespace": ns},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "system:coredns"},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["list", "watch"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "system:coredns"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:coredns",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": ns}],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "coredns", "namespace": ns},
            "data": {"Corefile": _COREFILE},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "coredns", "namespace": ns, "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": "coredns",
                        "dnsPolicy": "Default",
                        "priorityClassName": "system-cluster-critical",
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": 65534,
                            "seccompProfile": {"type": "RuntimeDefault"},
                            "sysctls": [
                                {"name": "net.ipv4.ip_unprivileged_port_start", "value": "53"}
                            ],
                        },
                        "containers": [
                            {
                                "name": "coredns",
                                "image": COREDNS_IMAGE,
                                "imagePullPolicy": "Never",
                                "args": ["-conf", "/etc/coredns/Corefile"],
                                "ports": [
                                    {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                                    {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                                ],
                                "readinessProbe": {
                                    "httpGet": {"path": "/ready", "port": 8181},
                                    "periodSeconds": 1,
                                },
                                "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}},
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                                "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns"}],
                            }
                        ],
                        "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": ns, "labels": labels},
            "spec": {
                "selector": labels,
                "clusterIP": DNS_SERVICE_IP,
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                ],
            },
        },
    ]


# -- the cluster ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PodOutcome:
    """How a run-to-completion pod ended: its phase and what it printed."""

    phase: str
    logs: str

    @property
    def succeeded(self) -> bool:
        return self.phase == "Succeeded"


@dataclass
class Cluster:
    """A running single-node cluster: the API (``kube``) and the node's addresses and tools."""

    kube: KubeCluster
    #: The node's InternalIP: the node's end of the veth pair, reachable from the machine
    #: (NodePort Services answer here).
    node_ip: str
    #: The machine's end of the veth pair, where the apiserver listens.
    host_ip: str
    workdir: Path
    node_name: str
    #: The cgroup (in every hierarchy) that holds every pod's cgroups.
    cgroup_root: str
    #: The machine's end of the veth pair, by name.
    host_link: str
    _node: _Node = field(repr=False)
    _ctr: Path = field(repr=False)

    @property
    def kubeconfig(self) -> Path:
        """An admin kubeconfig (for ``helm --kubeconfig``), usable from the machine."""
        return self.kube.kubeconfig

    @property
    def containerd_socket(self) -> Path:
        return self.workdir / "containerd.sock"

    def processes(self) -> set[int]:
        """Every process of the node: the namespaces' holder, what runs in them, every container."""
        pids = _cgroup_processes(self.cgroup_root)
        if self._node.holder.poll() is None:
            pids.add(self._node.holder.pid)
            pids.update(_namespace_processes(self._node.holder.pid))
        return pids

    def trust_registry(self, host: str) -> None:
        """Let containerd pull from the plain-HTTP registry at ``host`` (``ip:port``).

        A registry the tests start on ``host_ip`` is reachable from both the machine
        (``helm push``) and the node (image pulls); nothing else is.
        """
        directory = self.workdir / "registries" / host
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "hosts.toml").write_text(
            f'server = "http://{host}"\n\n[host."http://{host}"]\n'
            '  capabilities = ["pull", "resolve"]\n'
        )

    def node_run(self, argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a command inside the node's network and mount namespaces."""
        return self._node.run(argv, check=check)

    def ctr(self, *args: str, timeout: float = 300.0) -> str:
        """Run ``ctr`` against the node's containerd, in the namespace the kubelet uses."""
        target = ["--address", str(self.containerd_socket), "--namespace", "k8s.io"]
        return subprocess.run(
            [str(self._ctr), *target, *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
        ).stdout

    def import_image(self, archive: Path) -> None:
        """Load an OCI or Docker archive into the node's containerd, for pods to run."""
        self.ctr("images", "import", "--platform", "linux/amd64", str(archive))

    def create_namespace(self, name: str, labels: Mapping[str, str] | None = None) -> None:
        """A namespace whose ``default`` ServiceAccount exists, so pods can be created in it."""
        self.kube.apply(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": name, "labels": dict(labels or {})},
            }
        )
        self.wait_for(
            lambda: self.kube.get("v1", "ServiceAccount", "default", name),
            what=f"the default ServiceAccount of {name}",
        )

    def wait_for(
        self, predicate: Callable[[], object], timeout: float = 120.0, what: str = ""
    ) -> None:
        """Poll ``predicate`` until truthy; fail with the node's state after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not predicate():
            self._node.check_running()
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout}s: {what or predicate}")
            time.sleep(0.2)

    def wait_for_rollout(self, namespace: str, name: str, timeout: float = 120.0) -> None:
        """Until the Deployment's current generation has all its replicas available."""

        def rolled_out() -> bool:
            deployment = self.kube.get("apps/v1", "Deployment", name, namespace) or {}
            status = deployment.get("status") or {}
            wanted = (deployment.get("spec") or {}).get("replicas", 1)
            return bool(
                status.get("observedGeneration") == deployment["metadata"]["generation"]
                and status.get("updatedReplicas") == wanted
                and status.get("availableReplicas") == wanted
            )

        self.wait_for(rolled_out, timeout, f"Deployment {namespace}/{name} rolled out")

    def wait_for_service(self, namespace: str, name: str, timeout: float = 60.0) -> None:
        """Until kube-proxy sends the Service's traffic to every ready endpoint it has.

        A Deployment rolled out is not yet a Service that answers: kube-proxy writes
        its rules a moment later, and until then the node has no route to the address.
        """

        def ready_addresses() -> set[str]:
            slices = self.kube.request(
                "GET",
                f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices",
                params={"labelSelector": f"kubernetes.io/service-name={name}"},
            )["items"]
            return {
                address
                for piece in slices
                for endpoint in piece.get("endpoints") or []
                if (endpoint.get("conditions") or {}).get("ready")
                for address in endpoint["addresses"]
            }

        def programmed() -> bool:
            wanted = ready_addresses()
            rules = self.node_run(["iptables-save", "-t", "nat"]).stdout.splitlines()
            routed = {
                rule.partition("--to-destination ")[2].rpartition(":")[0]
                for rule in rules
                if f'"{namespace}/{name}' in rule and "-j DNAT" in rule
            }
            return bool(wanted) and wanted <= routed

        self.wait_for(programmed, timeout, f"kube-proxy routes Service {namespace}/{name}")

    def pod_logs(self, namespace: str, name: str) -> str:
        """A pod's logs, read through the apiserver from the kubelet."""
        response = self.kube.http.get(f"/api/v1/namespaces/{namespace}/pods/{name}/log")
        if response.status_code >= 400:
            raise KubeError(response.status_code, response.text)
        return response.text

    def run_pod(
        self,
        namespace: str,
        name: str,
        args: Sequence[str],
        labels: Mapping[str, str] | None = None,
        image: str = PROBE_IMAGE,
        timeout: float = 120.0,
    ) -> PodOutcome:
        """Run a pod to completion (no restarts) and return its phase and logs; delete it after."""
        self.kube.apply(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {})},
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 1,
                    "automountServiceAccountToken": False,
                    "securityContext": RESTRICTED_POD,
                    "containers": [
                        {
                            "name": "main",
                            "image": image,
                            "imagePullPolicy": "Never",
                            "args": list(args),
                            "securityContext": RESTRICTED_CONTAINER,
                        }
                    ],
                },
            }
        )
        phase = ""

        def finished() -> bool:
            nonlocal phase
            pod = self.kube.get("v1", "Pod", name, namespace) or {}
            phase = (pod.get("status") or {}).get("phase", "")
            return phase in ("Succeeded", "Failed")

        self.wait_for(finished, timeout, f"pod {namespace}/{name} finished")
        logs = self.pod_logs(namespace, name)
        self.kube.request(
            "DELETE",
            f"/api/v1/namespaces/{namespace}/pods/{name}",
            json={"gracePeriodSeconds": 0},
        )
        return PodOutcome(phase=phase, logs=logs)


#: The restricted Pod Security profile's fields, for the probe pods.
RESTRICTED_POD: dict[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": 65534,
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_CONTAINER: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


def _node_ready(kube: KubeCluster, name: str) -> bool:
    node = kube.get("v1", "Node", name) or {}
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _wait_socket(node: _Node, path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        node.check_running()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not appear within {timeout}s")
        time.sleep(0.05)


def _start_components(
    node: _Node,
    kube: KubeCluster,
    tools: _Tools,
    workdir: Path,
    node_ip: str,
    cgroup_root: str,
    sandbox_image: str,
) -> None:
    """containerd, the kubelet, the controller-manager, the scheduler and kube-proxy,
    each with its own identity (kube-router's, whose RBAC the cluster lacks, is admin)."""
    pki = workdir / "pki"
    pki.mkdir()
    kubeconfig = {
        name: kube.issue_kubeconfig(pki / f"{name}.kubeconfig", user, groups)
        for name, user, groups in [
            ("kubelet", f"system:node:{NODE_NAME}", ["system:nodes"]),
            ("controller-manager", "system:kube-controller-manager", []),
            ("scheduler", "system:kube-scheduler", []),
            ("kube-proxy", "system:kube-proxy", []),
            ("kube-router", "kube-router", ["system:masters"]),
        ]
    }
    (workdir / "containerd.toml").write_text(_containerd_config(workdir, sandbox_image))
    node.start("containerd", [str(tools.containerd), "--config", str(workdir / "containerd.toml")])
    (workdir / "resolv.conf").write_text("")
    (workdir / "kubelet.yaml").write_text(
        yaml.safe_dump(_kubelet_config(workdir, cgroup_root, node_ip, kube.ca_cert))
    )
    (workdir / "kube-proxy.yaml").write_text(
        yaml.safe_dump(_kube_proxy_config(kubeconfig["kube-proxy"]))
    )
    kube_pki = kube.workdir / "pki"
    node.start(
        "kube-controller-manager",
        [
            str(tools.controller_manager),
            f"--kubeconfig={kubeconfig['controller-manager']}",
            "--bind-address=127.0.0.1",
            "--leader-elect=false",
            "--use-service-account-credentials=true",
            f"--root-ca-file={kube.ca_cert}",
            f"--service-account-private-key-file={kube_pki / 'sa.key'}",
            "--allocate-node-cidrs=true",
            f"--cluster-cidr={POD_RANGE}",
            "--node-cidr-mask-size=24",
            f"--service-cluster-ip-range={SERVICE_RANGE}",
            "--controllers=*,-bootstrapsigner,-tokencleaner,-csrsigning",
            "--v=1",
        ],
    )
    node.start(
        "kube-scheduler",
        [
            str(tools.scheduler),
            f"--kubeconfig={kubeconfig['scheduler']}",
            "--bind-address=127.0.0.1",
            "--leader-elect=false",
            "--v=1",
        ],
    )
    _wait_socket(node, workdir / "containerd.sock")
    node.start(
        "kubelet",
        [
            str(tools.kubelet),
            f"--config={workdir / 'kubelet.yaml'}",
            f"--kubeconfig={kubeconfig['kubelet']}",
            f"--root-dir={workdir / 'kubelet'}",
            f"--cert-dir={workdir / 'kubelet-pki'}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={node_ip}",
            "--v=1",
        ],
    )
    node.start(
        "kube-proxy",
        [str(tools.kube_proxy), f"--config={workdir / 'kube-proxy.yaml'}", "--v=1"],
    )


def _start_policy_controller(node: _Node, tools: _Tools, workdir: Path) -> None:
    """kube-router's NetworkPolicy controller; it needs the node registered first."""
    node.start(
        "kube-router",
        [
            str(tools.kube_router),
            f"--kubeconfig={workdir / 'pki' / 'kube-router.kubeconfig'}",
            f"--hostname-override={NODE_NAME}",
            "--run-firewall=true",
            "--run-router=false",
            "--run-service-proxy=false",
            "--enable-cni=false",
            "--health-port=0",
            "--metrics-port=0",
            "--v=1",
        ],
    )


def _own_images(workdir: Path, tools: _Tools) -> list[Path]:
    images = workdir / "images"
    images.mkdir()
    return [
        write_image_archive(
            images / "pause.tar", PAUSE_IMAGE, {"/pause": tools.probe}, ["/pause", "pause"]
        ),
        write_image_archive(images / "probe.tar", PROBE_IMAGE, {"/probe": tools.probe}, ["/probe"]),
        write_image_archive(
            images / "coredns.tar", COREDNS_IMAGE, {"/coredns": tools.coredns}, ["/coredns"]
        ),
    ]


def _stop_node(node: _Node, cgroup_root: str) -> None:
    """Stop everything the node runs: its components, every container, containerd, its shims."""
    for name in (
        "kube-router",
        "kube-proxy",
        "kubelet",
        "kube-scheduler",
        "kube-controller-manager",
    ):
        with suppress(OSError):
            terminate(node.procs.get(name), grace=10)
    _remove_cgroup_root(cgroup_root)  # every container and sandbox
    with suppress(OSError):
        terminate(node.procs.get("containerd"), grace=10)
    _kill_all(lambda: _shims(node.workdir))
    if node.holder.poll() is None:
        _kill_all(lambda: _namespace_processes(node.holder.pid))


def _remove_node(node: _Node | None, cgroup_root: str, host_link: str) -> None:
    """End the holder (its namespaces, their rules, mounts and the veth pair go with it)."""
    if node is not None:
        terminate(node.holder, grace=5)
    _remove_cgroup_root(cgroup_root)
    if Path("/sys/class/net", host_link).exists():
        subprocess.run(["ip", "link", "delete", host_link], check=False)


# Over 60 lines on purpose: the whole bring-up of one node, in the order it runs.
@contextmanager
def running_cluster(
    ready_timeout: float = 180.0, *, sandbox: tuple[Path, str] | None = None
) -> Iterator[Cluster]:
    """Start a single-node cluster in namespaces of its own; tear all of it down after.

    ``sandbox`` is the pod sandbox (pause) image as (OCI archive, reference); the
    cluster's own ``PAUSE_IMAGE`` when None.
    """
    if os.geteuid() != 0:
        missing("root (a node needs namespaces, cgroups, mounts and iptables)", "run as root")
    tools = _find_tools()
    _sweep_stale()
    workdir = Path(tempfile.mkdtemp(prefix="stowage-cluster-"))
    suffix = workdir.name.rpartition("-")[2][:8]
    cgroup_root = f"/stowage-cluster-{suffix}"
    host_link = f"stwh{suffix}"
    node: _Node | None = None
    with ExitStack() as stack:
        try:
            node = _start_holder(workdir, tools.probe)
            host_ip, node_ip = _wire_node(node, _pick_link(), host_link)
            _make_cgroup_root(cgroup_root)
            kube = stack.enter_context(running_kube(address=host_ip, nodes=True))
            sandbox_image = sandbox[1] if sandbox else PAUSE_IMAGE
            _start_components(node, kube, tools, workdir, node_ip, cgroup_root, sandbox_image)
            cluster = Cluster(
                kube=kube,
                node_ip=node_ip,
                host_ip=host_ip,
                workdir=workdir,
                node_name=NODE_NAME,
                cgroup_root=cgroup_root,
                host_link=host_link,
                _node=node,
                _ctr=tools.ctr,
            )
            for archive in _own_images(workdir, tools) + ([sandbox[0]] if sandbox else []):
                cluster.import_image(archive)

            def pod_cidr() -> str:
                spec = (kube.get("v1", "Node", NODE_NAME) or {}).get("spec") or {}
                return str(spec.get("podCIDR") or "")

            cluster.wait_for(pod_cidr, ready_timeout, "the node registered with a pod CIDR")
            _start_policy_controller(node, tools, workdir)
            (workdir / "cni").mkdir(exist_ok=True)
            (workdir / "cni" / "10-stowage.conflist").write_text(
                json.dumps(_cni_config(workdir, pod_cidr()))
            )
            cluster.wait_for(lambda: _node_ready(kube, NODE_NAME), ready_timeout, "node Ready")
            kube.apply(_coredns_documents())
            cluster.wait_for_rollout("kube-system", "coredns", ready_timeout)
            yield cluster
        finally:
            try:
                if node is not None:
                    _stop_node(node, cgroup_root)
                # The apiserver listens on the machine's end of the veth pair: stop it
                # while that address still exists (its shutdown calls itself there).
                stack.close()
            finally:
                _remove_node(node, cgroup_root, host_link)
            if os.environ.get("STOWAGE_KEEP_KUBE_WORKDIR"):
                print(f"cluster workdir kept: {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
