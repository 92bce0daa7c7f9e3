"""A real Kubernetes control plane for tests: etcd + kube-apiserver on loopback.

The binaries come from ``hack/build-kube-tools.sh`` (built from the Go module
proxy into ``$STOWAGE_TOOLS_DIR/<tag>/bin``, default
``/var/cache/stowage/tools``); the tag is derived from
``hack/kube-tools/versions.env`` exactly as the script does. ``kube-apiserver``
and ``etcd`` on ``PATH`` are used when the cache has none.

The apiserver runs the way controller-runtime's envtest runs it: client
certificate authentication against a CA generated here, RBAC authorization,
service-account signing keys and issuer, ``ServiceAccount`` admission off.
There is no controller-manager and no kubelet: nothing garbage-collects owned
objects, namespaces never finish terminating, Deployments never get pods.
``running_kube(nodes=True)`` starts the same apiserver the way a cluster with a
node needs it (``stowage_testing/cluster.py`` adds the rest): ServiceAccount
admission on, the Node authorizer, the ``kubernetes`` Service's endpoints
reconciled to the advertised address, a client certificate for reaching kubelets.

``KubeCluster`` is general on purpose (the chart tests reuse it): it knows the
kubeconfig, the server URL and how to apply, read and delete YAML documents
with the admin identity, resolving kinds through API discovery.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from stowage_testing.tools import die_with_parent, find_program, free_port, missing, terminate

REPO = Path(__file__).resolve().parents[1]
VERSIONS = REPO / "hack" / "kube-tools" / "versions.env"
HOW = "run `make kube-tools` (hack/build-kube-tools.sh builds them from the Go module proxy)"


def tools_bin_dir() -> Path:
    """Where hack/build-kube-tools.sh puts the binaries for the pinned versions."""
    pins: dict[str, str] = {}
    for line in VERSIONS.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            pins[key.strip()] = value.strip()
    tag = (
        f"kube-{pins['KUBERNETES_VERSION']}-etcd-{pins['ETCD_VERSION']}-helm-{pins['HELM_VERSION']}"
    )
    root = Path(os.environ.get("STOWAGE_TOOLS_DIR") or "/var/cache/stowage/tools")
    return root / tag / "bin"


def find_kube_tool(name: str) -> Path:
    """The path of ``kube-apiserver``, ``etcd`` or ``helm``; fails if absent."""
    found = find_program(name, [tools_bin_dir()])
    if found is None:
        missing(name, HOW)
        raise AssertionError("unreachable")
    return found


# -- certificates --------------------------------------------------------------------------


def _write_key(path: Path, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _issue(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    server_names: Iterable[str] = (),
    client: bool = False,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    names: list[x509.GeneralName] = []
    for name in server_names:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            names.append(x509.DNSName(name))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    if client:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass(frozen=True)
class _Pki:
    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    sa_key: Path


def _make_pki(directory: Path, server_names: Iterable[str] = ()) -> _Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stowage-test-ca")])
    ca = _issue(ca_name, ca_key, ca_name, ca_key, ca=True)

    serving_key = ec.generate_private_key(ec.SECP256R1())
    serving = _issue(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]),
        serving_key,
        ca_name,
        ca_key,
        server_names=dict.fromkeys(
            [
                "127.0.0.1",
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                *server_names,
            ]
        ),
    )
    admin_key = ec.generate_private_key(ec.SECP256R1())
    admin = _issue(
        x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
                x509.NameAttribute(NameOID.COMMON_NAME, "stowage-test-admin"),
            ]
        ),
        admin_key,
        ca_name,
        ca_key,
        client=True,
    )
    pki = _Pki(
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        admin_cert=directory / "admin.crt",
        admin_key=directory / "admin.key",
        sa_key=directory / "sa.key",
    )
    _write_cert(pki.ca_cert, ca)
    _write_key(pki.ca_key, ca_key)
    _write_cert(pki.serving_cert, serving)
    _write_key(pki.serving_key, serving_key)
    _write_cert(pki.admin_cert, admin)
    _write_key(pki.admin_key, admin_key)
    _write_key(pki.sa_key, rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return pki


def _issue_client(
    ca_cert: Path, ca_key: Path, user: str, groups: Iterable[str], stem: Path
) -> tuple[Path, Path]:
    """A client certificate for ``user`` in ``groups`` at ``stem``.crt/.key, signed by the CA."""
    issuer_key = serialization.load_pem_private_key(ca_key.read_bytes(), password=None)
    assert isinstance(issuer_key, ec.EllipticCurvePrivateKey)
    issuer = x509.load_pem_x509_certificate(ca_cert.read_bytes()).subject
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, group) for group in groups]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, user))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _issue(x509.Name(attributes), key, issuer, issuer_key, client=True)
    cert_path, key_path = stem.with_suffix(".crt"), stem.with_suffix(".key")
    _write_cert(cert_path, cert)
    _write_key(key_path, key)
    return cert_path, key_path


# -- the cluster ---------------------------------------------------------------------------


class KubeError(AssertionError):
    """The API server answered a helper's request with an error status."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        message = body.get("message") if isinstance(body, dict) else body
        super().__init__(f"HTTP {status}: {message}")


@dataclass
class KubeCluster:
    """A running control plane and an admin client for it."""

    server: str
    kubeconfig: Path
    ca_cert: Path
    admin_cert: Path
    admin_key: Path
    workdir: Path
    #: The CA's key, for ``issue_kubeconfig``.
    ca_key: Path | None = None
    _client: httpx.Client | None = field(default=None, repr=False)
    _kinds: dict[tuple[str, str], tuple[str, bool]] = field(default_factory=dict, repr=False)

    # - plumbing

    @property
    def http(self) -> httpx.Client:
        if self._client is None:
            context = ssl.create_default_context(cafile=str(self.ca_cert))
            context.load_cert_chain(str(self.admin_cert), str(self.admin_key))
            self._client = httpx.Client(base_url=self.server, verify=context, timeout=30.0)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def request(self, method: str, path: str, **kw: Any) -> Any:
        response = self.http.request(method, path, **kw)
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        if response.status_code >= 400:
            raise KubeError(response.status_code, body)
        return body

    def _kind(self, api_version: str, kind: str) -> tuple[str, bool]:
        """(plural, namespaced) of a kind, from API discovery (refreshed on a miss)."""
        key = (api_version, kind)
        if key not in self._kinds:
            base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            for resource in self.request("GET", base)["resources"]:
                if "/" not in resource["name"]:
                    self._kinds[(api_version, resource["kind"])] = (
                        resource["name"],
                        bool(resource["namespaced"]),
                    )
        if key not in self._kinds:
            raise KeyError(f"the API server does not serve {kind} in {api_version}")
        return self._kinds[key]

    def path(
        self, api_version: str, kind: str, name: str | None = None, namespace: str | None = None
    ) -> str:
        plural, namespaced = self._kind(api_version, kind)
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        if namespaced:
            base += f"/namespaces/{namespace or 'default'}"
        return f"{base}/{plural}" + (f"/{name}" if name else "")

    def issue_client_cert(
        self, user: str, groups: Iterable[str] = (), directory: Path | None = None
    ) -> tuple[Path, Path]:
        """A client certificate and key for ``user`` in ``groups``, signed by the cluster's CA."""
        if self.ca_key is None:
            raise RuntimeError("this cluster keeps no CA key")
        directory = directory or self.workdir / "pki"
        stem = user.replace(":", "-")
        return _issue_client(self.ca_cert, self.ca_key, user, groups, directory / stem)

    def issue_kubeconfig(
        self, path: Path, user: str, groups: Iterable[str] = (), server: str | None = None
    ) -> Path:
        """A kubeconfig at ``path`` for ``user`` in ``groups`` (a fresh client certificate)."""
        cert, key = self.issue_client_cert(user, groups, path.parent)
        _write_kubeconfig(path, server or self.server, self.ca_cert, cert, key)
        return path

    # - documents

    def service_account_token(self, namespace: str, name: str, seconds: int = 3600) -> str:
        """A token of the ServiceAccount ``namespace/name``, from the TokenRequest API."""
        answer = self.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
            json={
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": seconds},
            },
        )
        token: str = answer["status"]["token"]
        return token

    def apply(self, documents: str | Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> list[Any]:
        """Server-side apply YAML text or documents as the admin; returns what the server stored."""
        if isinstance(documents, str):
            docs: list[Mapping[str, Any]] = [d for d in yaml.safe_load_all(documents) if d]
        elif isinstance(documents, Mapping):
            docs = [documents]
        else:
            docs = list(documents)
        stored = []
        for doc in docs:
            meta = doc["metadata"]
            path = self.path(doc["apiVersion"], doc["kind"], meta["name"], meta.get("namespace"))
            stored.append(
                self.request(
                    "PATCH",
                    path,
                    params={"fieldManager": "stowage-tests", "force": "true"},
                    content=json.dumps(dict(doc)).encode(),
                    headers={"Content-Type": "application/apply-patch+yaml"},
                )
            )
            if doc["kind"] == "CustomResourceDefinition":
                self.wait_for_crd(meta["name"])
                self._kinds.clear()
        return stored

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            obj: dict[str, Any] = self.request("GET", self.path(api_version, kind, name, namespace))
        except KubeError as e:
            if e.status == 404:
                return None
            raise
        return obj

    def list(self, api_version: str, kind: str, namespace: str | None = None) -> list[Any]:
        items: list[Any] = self.request("GET", self.path(api_version, kind, None, namespace))[
            "items"
        ]
        return items

    def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        body: Mapping[str, Any],
        namespace: str | None = None,
    ) -> Any:
        """A JSON merge patch."""
        return self.request(
            "PATCH",
            self.path(api_version, kind, name, namespace),
            json=dict(body),
            headers={"Content-Type": "application/merge-patch+json"},
        )

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        """Delete an object; False when it was already gone."""
        try:
            self.request("DELETE", self.path(api_version, kind, name, namespace))
        except KubeError as e:
            if e.status == 404:
                return False
            raise
        return True

    def create_namespace(self, name: str) -> None:
        self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def wait_for_crd(self, name: str, timeout: float = 30.0) -> None:
        """Until the CRD is Established and its kinds are served."""
        deadline = time.monotonic() + timeout
        while True:
            crd = self.request(
                "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
            )
            conditions = {
                c["type"]: c["status"] for c in (crd.get("status") or {}).get("conditions") or []
            }
            if conditions.get("Established") == "True":
                group = crd["spec"]["group"]
                versions = [v["name"] for v in crd["spec"]["versions"] if v.get("served")]
                try:
                    for version in versions:
                        self.request("GET", f"/apis/{group}/{version}")
                    return
                except KubeError:
                    pass
            if time.monotonic() > deadline:
                raise AssertionError(f"CRD {name} not established within {timeout}s")
            time.sleep(0.1)


def _wait_ready(
    cluster: KubeCluster, procs: Mapping[str, subprocess.Popen[bytes]], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        for name, proc in procs.items():
            if proc.poll() is not None:
                log = (cluster.workdir / f"{name}.log").read_text(errors="replace")[-4000:]
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{log}")
        try:
            response = cluster.http.get("/readyz", timeout=2.0)
            if response.status_code == 200:
                return
            last = response.text
        except httpx.HTTPError as e:
            last = e
        if time.monotonic() > deadline:
            raise RuntimeError(f"kube-apiserver not ready within {timeout}s: {last}")
        time.sleep(0.2)


def _write_kubeconfig(path: Path, server: str, ca: Path, cert: Path, key: Path) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "stowage-test",
                "cluster": {"server": server, "certificate-authority": str(ca)},
            }
        ],
        "users": [
            {
                "name": "admin",
                "user": {"client-certificate": str(cert), "client-key": str(key)},
            }
        ],
        "contexts": [
            {"name": "stowage-test", "context": {"cluster": "stowage-test", "user": "admin"}}
        ],
        "current-context": "stowage-test",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)


#: The Services' range; its first address is the ``kubernetes`` Service's.
SERVICE_RANGE = "10.96.0.0/16"  # a Service per Tenant, 1,000+


def _apiserver_mode_args(pki: _Pki, workdir: Path, nodes: bool) -> list[str]:
    """The flags that differ between a bare control plane and one that serves nodes."""
    if not nodes:
        return [
            "--authorization-mode=RBAC",
            "--disable-admission-plugins=ServiceAccount",
            "--endpoint-reconciler-type=none",
        ]
    cert, key = _issue_client(
        pki.ca_cert,
        pki.ca_key,
        "kube-apiserver-kubelet-client",
        ["system:masters"],
        workdir / "pki" / "kubelet-client",
    )
    return [
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        f"--kubelet-client-certificate={cert}",
        f"--kubelet-client-key={key}",
        "--kubelet-preferred-address-types=InternalIP",
    ]


# Over 60 lines on purpose: certificates, etcd, kube-apiserver, readiness and teardown of one
# throwaway control plane, in the order they run.
@contextmanager
def running_kube(
    ready_timeout: float = 90.0, *, address: str = "127.0.0.1", nodes: bool = False
) -> Iterator[KubeCluster]:
    """Start etcd and kube-apiserver on free ports; stop and remove both after.

    etcd listens on loopback; the apiserver on ``address`` (loopback unless a node
    must reach it, see ``stowage_testing/cluster.py``). ``nodes=True`` runs the
    apiserver as a cluster with a kubelet needs it (the module's docstring).
    """
    apiserver = find_kube_tool("kube-apiserver")
    etcd = find_kube_tool("etcd")

    workdir = Path(tempfile.mkdtemp(prefix="stowage-kube-"))
    procs: dict[str, subprocess.Popen[bytes]] = {}
    cluster: KubeCluster | None = None
    try:
        service_ip = str(next(ipaddress.ip_network(SERVICE_RANGE).hosts()))
        pki = _make_pki(workdir / "pki", [address, service_ip])
        mode_args = _apiserver_mode_args(pki, workdir, nodes)
        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        server = f"https://{address}:{api_port}"
        with (workdir / "etcd.log").open("wb") as log:
            procs["etcd"] = subprocess.Popen(
                [
                    str(etcd),
                    f"--data-dir={workdir / 'etcd'}",
                    f"--listen-client-urls={etcd_url}",
                    f"--advertise-client-urls={etcd_url}",
                    f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                    f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                    f"--initial-cluster=default=http://127.0.0.1:{peer_port}",
                    "--unsafe-no-fsync=true",
                    "--log-level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )
        with (workdir / "kube-apiserver.log").open("wb") as log:
            procs["kube-apiserver"] = subprocess.Popen(
                [
                    str(apiserver),
                    f"--etcd-servers={etcd_url}",
                    f"--bind-address={address}",
                    f"--advertise-address={address}",
                    f"--secure-port={api_port}",
                    f"--cert-dir={workdir / 'certs'}",
                    f"--tls-cert-file={pki.serving_cert}",
                    f"--tls-private-key-file={pki.serving_key}",
                    f"--client-ca-file={pki.ca_cert}",
                    f"--service-account-issuer={server}",
                    f"--service-account-key-file={pki.sa_key}",
                    f"--service-account-signing-key-file={pki.sa_key}",
                    f"--service-cluster-ip-range={SERVICE_RANGE}",
                    "--allow-privileged=true",
                    *mode_args,
                    "--v=1",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )
        kubeconfig = workdir / "kubeconfig"
        _write_kubeconfig(kubeconfig, server, pki.ca_cert, pki.admin_cert, pki.admin_key)
        cluster = KubeCluster(
            server=server,
            kubeconfig=kubeconfig,
            ca_cert=pki.ca_cert,
            admin_cert=pki.admin_cert,
            admin_key=pki.admin_key,
            workdir=workdir,
            ca_key=pki.ca_key,
        )
        _wait_ready(cluster, procs, ready_timeout)
        yield cluster
    finally:
        if cluster is not None:
            cluster.close()
        for name in ("kube-apiserver", "etcd"):
            if name in procs:
                with suppress(OSError):
                    terminate(procs[name])
        if os.environ.get("STOWAGE_KEEP_KUBE_WORKDIR"):
            print(f"kube workdir kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
