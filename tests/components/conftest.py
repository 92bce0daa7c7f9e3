"""Real parts for the components tier.

A worker on PostgreSQL, an issuer and a gateway whose tenant declares the
``notes`` collection and the checked-in Notes component; the host side built
from its pinned packages; two loopback HTTP servers: the host page on one
origin, the sandbox proxy (with the view's CSP) on another, as ext-apps'
basic-host serves them. Loopback origins are what the gateway accepts from a
browser without configuration (CORS and its Origin check).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from stowage_testing.gateway import (
    WORKER_POLICY,
    GatewayProcess,
    Issuer,
    running_gateway,
    running_issuer,
    tenant_entry,
)
from stowage_testing.postgres import PostgresServer
from stowage_testing.worker import WorkerProcess, running_worker
from tests.components.tools import NOTES_HTML, REPO, ComponentTools

TENANT = "acme"
#: The component as the demo tenant declares it (tenant spec ``components``).
NOTES_COMPONENT: dict[str, Any] = {
    "name": "notes",
    "title": "Notes",
    "tools": ["notes_list", "notes_get", "notes_save"],
    "domains": {"connect": [], "resource": [], "frame": []},
    "prefersBorder": True,
}


@pytest.fixture(scope="session")
def component_tools() -> ComponentTools:
    return ComponentTools.find()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where the browser test leaves its screenshots (``$STOWAGE_ARTIFACTS/components``)."""
    root = Path(os.environ.get("STOWAGE_ARTIFACTS") or REPO / ".artifacts")
    directory = root / "components"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Issuer]:
    with running_issuer(tmp_path_factory.mktemp("issuer")) as found:
        yield found


@pytest.fixture(scope="module")
def worker(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    url = postgres.sqlalchemy_url(postgres.create_database("components"))
    with running_worker(url, tmp_path_factory.mktemp("worker"), WORKER_POLICY, tenant=TENANT) as w:
        yield w


@pytest.fixture(scope="module")
def gateway(
    worker: WorkerProcess, issuer: Issuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    workdir = tmp_path_factory.mktemp("gateway")
    g = GatewayProcess(workdir=workdir)
    component = {**NOTES_COMPONENT, "html": NOTES_HTML.read_text()}
    g.write_tenants([tenant_entry(TENANT, g, issuer, worker.address, components=[component])])
    with running_gateway(workdir, port=g.port) as started:
        yield started


def content_security_policy(csp: dict[str, list[str]]) -> str:
    """The view's CSP from its resource's ``_meta.ui.csp``: nothing beyond what it declares.

    Inline script and style only (the view is one self-contained file), no eval,
    no network but the declared ``connectDomains``, no frames but ``frameDomains``.
    """

    def sources(*parts: str, domains: str) -> str:
        listed = [*parts, *csp.get(domains, [])]
        return " ".join(listed) if listed else "'none'"

    inline = "'unsafe-inline'"
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {sources(inline, domains='resourceDomains')}",
            f"style-src {sources(inline, domains='resourceDomains')}",
            f"img-src {sources('data:', domains='resourceDomains')}",
            f"font-src {sources('data:', domains='resourceDomains')}",
            f"connect-src {sources(domains='connectDomains')}",
            f"frame-src {sources(domains='frameDomains')}",
            "base-uri 'none'",
            "form-action 'none'",
            "object-src 'none'",
        ]
    )


def _handler(pages: dict[str, Path], with_csp: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            page = pages.get(url.path)
            if page is None:
                self.send_error(HTTPStatus.NOT_FOUND)
                return
            body = page.read_bytes()
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Cache-Control", "no-store")
            if with_csp:
                csp = json.loads(parse_qs(url.query).get("csp", ["{}"])[0])
                self.send_header("Content-Security-Policy", content_security_policy(csp))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@dataclass(frozen=True)
class Origins:
    """The host page's URL and the sandbox proxy's, each on its own loopback origin."""

    host_page: str
    sandbox_page: str


@contextmanager
def _serving(pages: dict[str, Path], *, with_csp: bool) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(pages, with_csp))
    thread = threading.Thread(target=server.serve_forever, name="components-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def origins(
    component_tools: ComponentTools, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Origins]:
    built = tmp_path_factory.mktemp("host")
    component_tools.build(built, "host")
    with (
        _serving({"/host.html": built / "host.html"}, with_csp=False) as host,
        _serving({"/sandbox.html": built / "sandbox.html"}, with_csp=True) as sandbox,
    ):
        yield Origins(f"{host}/host.html", f"{sandbox}/sandbox.html")
