"""Where the Kubernetes API is and who the gateway is there: a kubeconfig or the pod's account.

A kubeconfig file gives its current context: the cluster's ``server``, its
certificate authority (or ``insecure-skip-tls-verify``) and the user's client
certificate and key, or ``token`` / ``tokenFile``; each as a file (relative to
the kubeconfig's directory) or inline ``-data``. Exec and auth-provider
credential plugins are not supported and say so. In a pod, the service account
gives ``KUBERNETES_SERVICE_HOST``/``_PORT`` and the token and CA under
``/var/run/secrets/kubernetes.io/serviceaccount``. A token file is read again
for each request: the kubelet rotates it.

Reads files only; a problem is a :class:`~gateway._errors.KubeUnavailable`.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gateway._errors import KubeUnavailable

#: Where a pod finds its service account's token and the cluster's CA.
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass(frozen=True)
class KubeAccess:
    """Where the API server is and how to authenticate to it."""

    server: str
    #: The TLS context (the cluster's CA, a client certificate), or False: no verification.
    verify: ssl.SSLContext | bool
    token: str | None = None
    #: A bearer token read afresh for each request (service account tokens rotate).
    token_file: Path | None = None

    def headers(self) -> dict[str, str]:
        token = self.token
        if self.token_file is not None:
            token = self.token_file.read_text().strip()
        return {"Authorization": f"Bearer {token}"} if token else {}


def in_cluster(
    environ: Mapping[str, str] = os.environ, account: Path = SERVICE_ACCOUNT
) -> KubeAccess:
    """The pod's service account."""
    host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise KubeUnavailable(
            "not in a cluster: KUBERNETES_SERVICE_HOST/PORT unset (pass --kubeconfig)"
        )
    if ":" in host:  # IPv6
        host = f"[{host}]"
    context = ssl.create_default_context(cafile=str(account / "ca.crt"))
    return KubeAccess(f"https://{host}:{port}", context, token_file=account / "token")


def from_kubeconfig(path: Path) -> KubeAccess:
    """The current context of the kubeconfig at ``path``."""
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise KubeUnavailable(f"kubeconfig {path}: {e}") from e
    return _Kubeconfig(path, doc if isinstance(doc, dict) else {}).access()


class _Kubeconfig:
    def __init__(self, path: Path, doc: Mapping[str, Any]) -> None:
        self.path = path
        self.doc = doc

    def access(self) -> KubeAccess:
        current = self.doc.get("current-context")
        context = self._named("contexts", "context", current)
        cluster = self._named("clusters", "cluster", context.get("cluster"))
        user = self._named("users", "user", context.get("user"), optional=True)
        server = cluster.get("server")
        if not isinstance(server, str) or not server:
            raise self._error(f"cluster {context.get('cluster')!r} has no server")
        for plugin in ("exec", "auth-provider"):
            if user.get(plugin):
                raise self._error(
                    f"user {context.get('user')!r}: {plugin} credentials are not supported; "
                    "use a client certificate, token or tokenFile"
                )
        token_file = user.get("tokenFile")
        return KubeAccess(
            server=server.rstrip("/"),
            verify=self._tls(cluster, user),
            token=user.get("token") or None,
            token_file=self._relative(token_file) if token_file else None,
        )

    def _named(
        self, section: str, field: str, name: object, optional: bool = False
    ) -> Mapping[str, Any]:
        for entry in self.doc.get(section) or []:
            if isinstance(entry, Mapping) and entry.get("name") == name:
                found = entry.get(field)
                return found if isinstance(found, Mapping) else {}
        if optional:
            return {}
        raise self._error(f"no {field} named {name!r} (current-context)")

    def _tls(self, cluster: Mapping[str, Any], user: Mapping[str, Any]) -> ssl.SSLContext | bool:
        if cluster.get("insecure-skip-tls-verify"):
            return False
        ca_data = cluster.get("certificate-authority-data")
        ca_file = cluster.get("certificate-authority")
        context = ssl.create_default_context(
            cafile=str(self._relative(ca_file)) if ca_file and not ca_data else None,
            cadata=_decoded(ca_data).decode() if ca_data else None,
        )
        cert = self._pem(user, "client-certificate")
        key = self._pem(user, "client-key")
        if cert is not None and key is not None:
            _load_cert_chain(context, cert, key)
        elif cert is not None or key is not None:
            raise self._error("a client certificate needs both client-certificate and client-key")
        return context

    def _pem(self, user: Mapping[str, Any], name: str) -> Path | bytes | None:
        """The user's ``name`` as a file, or its inline ``name-data``."""
        data = user.get(f"{name}-data")
        if data:
            return _decoded(data)
        file = user.get(name)
        return self._relative(file) if file else None

    def _relative(self, file: str) -> Path:
        """A path as kubeconfig means it: relative to the kubeconfig's own directory."""
        return self.path.parent / Path(file).expanduser()

    def _error(self, message: str) -> KubeUnavailable:
        return KubeUnavailable(f"kubeconfig {self.path}: {message}")


def _decoded(data: str) -> bytes:
    return base64.b64decode(data)


def _load_cert_chain(context: ssl.SSLContext, cert: Path | bytes, key: Path | bytes) -> None:
    """``load_cert_chain`` takes files only: inline data goes through a private directory."""
    with tempfile.TemporaryDirectory(prefix="stowage-kube-") as tmp:
        files = []
        for name, pem in (("tls.crt", cert), ("tls.key", key)):
            if isinstance(pem, bytes):
                path = Path(tmp) / name
                path.touch(mode=0o600)
                path.write_bytes(pem)
                pem = path
            files.append(str(pem))
        context.load_cert_chain(files[0], files[1])
