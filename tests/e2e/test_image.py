"""The project's image, run for real: runc on the unpacked image, the way the chart runs it.

The image comes from ``make image`` (hack/build-image.sh: buildah on the
Dockerfile, on a Debian bookworm base made with debootstrap). Every container
here runs as the image's user (uid 10001), on a read-only root filesystem with
a tmpfs on /tmp, without capabilities, in a network namespace of its own that
holds nothing but loopback, so nothing in it can reach beyond this machine.
PostgreSQL reaches the worker through its Unix socket, bind-mounted in.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from stowage_testing.images import (
    BuiltImage,
    built_image,
    layout_of,
    pull_image,
    push_chart,
    push_image,
    unpack,
)
from stowage_testing.kube import find_kube_tool
from stowage_testing.postgres import running_own_postgres
from stowage_testing.registry import running_registry
from stowage_testing.tools import find_program, missing

pytestmark = pytest.mark.timeout(600)

#: What the worker listens on inside its network namespace.
WORKER_GRPC = "127.0.0.1:50051"
WORKER_METRICS = 9100


def _program(name: str) -> Path:
    found = find_program(name, [Path("/usr/sbin"), Path("/sbin")])
    if found is None:
        missing(name, f"install it (Debian: apt-get install {name})")
        raise AssertionError("unreachable")
    return found


@dataclass(frozen=True)
class Unpacked:
    """An image unpacked to a root filesystem, and its configuration."""

    image: BuiltImage
    rootfs: Path
    config: dict[str, Any]

    @property
    def user(self) -> tuple[int, int]:
        uid, _, gid = str(self.config["config"]["User"]).partition(":")
        return int(uid), int(gid or uid)

    @property
    def env(self) -> dict[str, str]:
        return dict(e.split("=", 1) for e in self.config["config"].get("Env", []))


def _unpack(image: BuiltImage, workdir: Path) -> Unpacked:
    layout = layout_of(image, workdir / "layout")
    rootfs = workdir / "rootfs"
    config = unpack(layout, rootfs, image.reference)
    return Unpacked(image, rootfs, config)


@pytest.fixture(scope="module")
def stowage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Unpacked]:
    """This tree's image unpacked; removed afterwards (some 400 MiB)."""
    image = built_image("stowage")
    print(
        f"\n{image.reference} {image.digest}: {image.compressed_bytes / 2**20:.1f} MiB compressed,"
        f" {image.unpacked_bytes / 2**20:.1f} MiB unpacked"
    )
    workdir = tmp_path_factory.mktemp("stowage-image")
    try:
        yield _unpack(image, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def runc_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runc-state")


@contextmanager
def _network_namespace() -> Iterator[Path]:
    """A network namespace with loopback up and nothing else: no route out of it."""
    ip = _program("ip")
    name = f"stowage-img-{uuid.uuid4().hex[:8]}"
    subprocess.run([str(ip), "netns", "add", name], check=True, capture_output=True)
    try:
        subprocess.run(
            [str(ip), "-n", name, "link", "set", "lo", "up"], check=True, capture_output=True
        )
        yield Path("/run/netns") / name
    finally:
        subprocess.run([str(ip), "netns", "delete", name], check=False, capture_output=True)


def _spec(
    unpacked: Unpacked,
    argv: Sequence[str],
    *,
    netns: Path | None,
    binds: Sequence[tuple[Path, str]],
) -> dict[str, Any]:
    """The OCI runtime configuration of one restricted container (runc's defaults, tightened)."""
    uid, gid = unpacked.user
    image_config = unpacked.config["config"]
    no_caps: list[str] = []
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        # The chart's emptyDir on /tmp.
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "nodev", "mode=1777", "size=65536k"]},
    ]  # fmt: skip
    for source, destination in binds:
        mounts.append(
            {"destination": destination, "type": "bind", "source": str(source),
             "options": ["rbind", "nosuid", "nodev", "noexec"]}
        )  # fmt: skip
    network: dict[str, str] = {"type": "network"}
    if netns is not None:
        network["path"] = str(netns)
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": uid, "gid": gid},
            "args": list(argv),
            "env": image_config.get("Env", []),
            "cwd": image_config.get("WorkingDir") or "/",
            "capabilities": {k: no_caps for k in ("bounding", "effective", "permitted", "ambient")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 4096}],
            "noNewPrivileges": True,
        },
        "root": {"path": str(unpacked.rootfs), "readonly": True},
        "hostname": "stowage",
        "mounts": mounts,
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount")] + [network],
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
            "readonlyPaths": [
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger",
            ],
        },
    }


@dataclass
class Container:
    """One container started by ``runc run`` in the foreground: its exit status is runc's."""

    id: str
    proc: subprocess.Popen[bytes]
    log: Path
    state: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def signal(self, name: str) -> None:
        subprocess.run(
            [str(_program("runc")), "--root", str(self.state), "kill", self.id, name],
            check=True,
            capture_output=True,
        )


@contextmanager
def _container(
    unpacked: Unpacked,
    argv: Sequence[str],
    state: Path,
    *,
    netns: Path | None = None,
    binds: Sequence[tuple[Path, str]] = (),
) -> Iterator[Container]:
    """Start ``argv`` in the image; on the way out, kill it if it still runs, and delete it."""
    runc = _program("runc")
    cid = f"stowage-{uuid.uuid4().hex[:12]}"
    bundle = state / f"bundle-{cid}"
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps(_spec(unpacked, argv, netns=netns, binds=binds)))
    log = bundle / "output.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(runc), "--root", str(state), "run", "--bundle", str(bundle), cid],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    container = Container(cid, proc, log, state)
    try:
        yield container
    finally:
        if proc.poll() is None:
            with suppress(subprocess.CalledProcessError):
                container.signal("KILL")
            proc.wait(timeout=30)
        subprocess.run(
            [str(runc), "--root", str(state), "delete", "--force", cid],
            check=False,
            capture_output=True,
        )


def _run(
    unpacked: Unpacked,
    argv: Sequence[str],
    state: Path,
    binds: Sequence[tuple[Path, str]] = (),
) -> tuple[int, str]:
    """Run ``argv`` in the image to its end in an empty network namespace; (status, output)."""
    with _container(unpacked, argv, state, binds=binds) as container:
        status = container.proc.wait(timeout=120)
        return status, container.output()


def _entrypoint(unpacked: Unpacked, *args: str) -> list[str]:
    return [*unpacked.config["config"]["Entrypoint"], *args]


# -- the image as built ---------------------------------------------------------------------


def test_the_image_runs_as_uid_10001_with_the_cli_as_its_entrypoint(stowage: Unpacked) -> None:
    config = stowage.config["config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["stowage"]
    assert stowage.env["HOME"] == "/tmp"
    assert stowage.env["PATH"].split(":")[0] == "/opt/stowage/bin"
    assert stowage.env["STOWAGE_PG_BIN"] == "/usr/lib/postgresql/15/bin"
    passwd = (stowage.rootfs / "etc" / "passwd").read_text()
    assert "stowage:x:10001:10001:" in passwd


def test_the_image_ships_no_build_leftovers_and_only_compiled_project_code(
    stowage: Unpacked,
) -> None:
    root = stowage.rootfs
    assert (root / "opt/stowage/bin/stowage").is_file()
    for leftover in ("opt/stowage/bin/pip", "src", "wheels", "usr/bin/gcc", "usr/bin/pip3"):
        assert not (root / leftover).exists(), leftover
    assert not any((root / "var/lib/apt/lists").glob("*_Packages*"))
    assert not list(root.glob("root/.cache/**/*.whl"))
    [site] = list((root / "opt/stowage/lib").glob("python3.*/site-packages"))
    sources = [p for pkg in ("stowage", "gateway", "tenant_worker", "tenant_backup",
                             "stowage_operator") for p in (site / pkg).rglob("*.py")]  # fmt: skip
    assert sources, f"no project packages in {site}"
    # The root filesystem is read-only at run time: nothing could be compiled there.
    uncompiled = [
        str(p.relative_to(site))
        for p in sources
        if not list(p.parent.joinpath("__pycache__").glob(f"{p.stem}.cpython-*.pyc"))
    ]
    assert uncompiled == []
    # The worker's migrations ship inside the wheel.
    assert list((site / "tenant_worker" / "migrations" / "versions").glob("0001_*.py"))


def test_the_cli_and_the_backup_cli_answer_help_on_a_read_only_root(
    stowage: Unpacked, runc_state: Path
) -> None:
    status, output = _run(stowage, _entrypoint(stowage, "--help"), runc_state)
    assert status == 0, output
    for command in ("operator", "gateway", "worker", "backup"):
        assert command in output, command
    status, output = _run(stowage, _entrypoint(stowage, "backup", "--help"), runc_state)
    assert status == 0, output
    for command in ("run", "drill", "restore"):
        assert command in output, command


def test_the_container_is_unprivileged_read_only_and_has_no_network_beyond_loopback(
    stowage: Unpacked, runc_state: Path
) -> None:
    probe = textwrap.dedent(
        """
        import os, socket
        print("uid", os.getuid(), os.getgid())
        status = open("/proc/self/status").read().splitlines()
        print("caps", [line.split()[1] for line in status if line.startswith("CapEff")][0])
        for path in ("/opt/stowage/probe", "/etc/probe", "/tmp/probe"):
            try:
                open(path, "w").close()
                print("write", path, "ok")
            except OSError as e:
                print("write", path, e.strerror)
        print("interfaces", sorted(name for _, name in socket.if_nameindex()))
        try:
            socket.create_connection(("192.0.2.1", 80), timeout=3)
            print("outside reached")
        except OSError as e:
            print("outside", e.strerror or e)
        """
    )
    status, output = _run(stowage, ["python", "-c", probe], runc_state)
    assert status == 0, output
    lines = output.splitlines()
    assert "uid 10001 10001" in lines
    assert "caps 0000000000000000" in lines
    assert "write /opt/stowage/probe Read-only file system" in lines
    assert "write /etc/probe Read-only file system" in lines
    assert "write /tmp/probe ok" in lines
    assert "interfaces ['lo']" in lines
    assert "outside reached" not in lines
    assert "outside Network is unreachable" in lines


def test_the_postgresql_client_programs_are_of_the_pinned_major(
    stowage: Unpacked, runc_state: Path
) -> None:
    script = 'for p in pg_dump pg_restore psql; do "$STOWAGE_PG_BIN/$p" --version; done'
    status, output = _run(stowage, ["sh", "-c", script], runc_state)
    assert status == 0, output
    versions = output.splitlines()
    assert [v.split(" (PostgreSQL) ")[0] for v in versions] == ["pg_dump", "pg_restore", "psql"]
    assert all(v.split(" (PostgreSQL) ")[1].startswith("15.") for v in versions), versions


# -- the worker from the image, against a real PostgreSQL -----------------------------------


_HEALTH_PROBE = """
import sys, time, urllib.request
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
deadline = time.monotonic() + float(sys.argv[2])
with grpc.insecure_channel(sys.argv[1]) as channel:
    stub = health_pb2_grpc.HealthStub(channel)
    while True:
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                break
        except grpc.RpcError:
            pass
        if time.monotonic() > deadline:
            print("NOT SERVING")
            sys.exit(1)
        time.sleep(0.2)
print("SERVING")
metrics = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[3]}/metrics", timeout=5).read()
print("metrics", len(metrics), b"stowage_" in metrics)
"""


def _probe_in(netns: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """Check the worker's gRPC health and metrics from inside its network namespace.

    The client is this machine's Python (with grpcio), not the image's: the image is
    what is tested. ``ip netns exec`` runs it in the container's network only.
    """
    return subprocess.run(
        [str(_program("ip")), "netns", "exec", netns.name, sys.executable, "-c", _HEALTH_PROBE,
         WORKER_GRPC, str(timeout), str(WORKER_METRICS)],
        capture_output=True, text=True, timeout=timeout + 60, check=False,
    )  # fmt: skip


def test_the_worker_from_the_image_migrates_serves_health_and_stops_on_sigterm(
    stowage: Unpacked, runc_state: Path
) -> None:
    with running_own_postgres() as pg:
        assert pg.cluster is not None
        sockets = pg.cluster.data.parent / "sock"
        assert (sockets / f".s.PGSQL.{pg.port}").exists()
        database = pg.create_database("image")
        url = (
            f"postgresql+psycopg://{pg.user}:{pg.password}@/{database}"
            f"?host=/run/postgresql&port={pg.port}"
        )
        binds = [(sockets, "/run/postgresql")]

        status, output = _run(
            stowage, _entrypoint(stowage, "worker", "migrate", "--database-url", url),
            runc_state, binds,
        )  # fmt: skip
        assert status == 0, output
        with psycopg.connect(pg.dsn(database)) as conn:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        assert row is not None and row[0], "no migration recorded"

        serve = _entrypoint(
            stowage, "worker", "serve", "--database-url", url, "--tenant", "acme",
            "--listen", WORKER_GRPC, "--metrics-port", str(WORKER_METRICS),
        )  # fmt: skip
        with (
            _network_namespace() as netns,
            _container(stowage, serve, runc_state, netns=netns, binds=binds) as worker,
        ):
            probe = _probe_in(netns, 60)
            assert probe.returncode == 0, probe.stdout + probe.stderr + worker.output()
            assert "SERVING" in probe.stdout.splitlines()
            assert "metrics" in probe.stdout and probe.stdout.strip().endswith("True")
            # What the kubelet does to stop a pod: SIGTERM to the container's first process.
            worker.signal("TERM")
            status = worker.proc.wait(timeout=60)
            assert status == 0, worker.output()


# -- the registry: push, pull back by digest; the chart beside it ---------------------------


def test_the_image_and_the_chart_push_to_a_registry_and_pull_back_by_digest(
    stowage: Unpacked, tmp_path: Path
) -> None:
    image = stowage.image
    with running_registry(tmp_path / "registry", tls=True) as registry:
        pushed = push_image(image, registry, "stowage/stowage", image.tag)
        assert pushed == image.digest
        layout = pull_image(registry, "stowage/stowage", pushed, tmp_path / "pulled")
        index = json.loads((layout / "index.json").read_text())
        assert [m["digest"] for m in index["manifests"]] == [image.digest]
        manifest = json.loads(
            (layout / "blobs" / "sha256" / image.digest.split(":", 1)[1]).read_text()
        )
        assert manifest["config"]["digest"] == image.manifest()["config"]["digest"]
        assert [layer["digest"] for layer in manifest["layers"]] == [
            layer["digest"] for layer in image.manifest()["layers"]
        ]

        helm = find_kube_tool("helm")
        home = tmp_path / "helm-home"
        chart = push_chart(helm, home, registry, tmp_path / "chart")
        assert chart.url == f"oci://{registry.address}/charts/stowage"
        shown = subprocess.run(
            [str(helm), "show", "chart", f"{chart.url}@{chart.digest}",
             "--ca-file", str(registry.ca_file)],
            env={"PATH": os.environ.get("PATH", ""), "HOME": str(home),
                 "HELM_CACHE_HOME": str(home / "cache"), "HELM_CONFIG_HOME": str(home / "config"),
                 "HELM_DATA_HOME": str(home / "data")},
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert shown.returncode == 0, shown.stderr
        assert "name: stowage" in shown.stdout
        assert f"version: {chart.version}" in shown.stdout


# -- the pod sandbox image ------------------------------------------------------------------


def test_the_pause_image_is_one_static_program_that_runs_from_scratch(
    tmp_path: Path, runc_state: Path
) -> None:
    pause = _unpack(built_image("pause"), tmp_path)
    assert sorted(os.listdir(pause.rootfs)) == ["pause"]
    assert pause.config["config"]["Entrypoint"] == ["/pause"]
    assert pause.user == (65535, 65535)
    # No libc in the image: only a static program can start at all.
    status, output = _run(pause, ["/pause", "-v"], runc_state)
    assert status == 0, output
    assert output.strip() == "pause.c v3.10.1"
