"""Real parts for gateway tests: an issuer over HTTP, gateway processes, MCP clients."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import httpx2
import yaml
from joserfc.jwk import RSAKey
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from gateway._processes import READY_MESSAGE
from stowage.wire import TOOL_ERROR_META_KEY

# The issuer lives in stowage_testing.issuer; re-exported for the tiers that import it from here.
from stowage_testing.issuer import Issuer as Issuer
from stowage_testing.issuer import running_issuer as running_issuer
from stowage_testing.tools import free_port, terminate
from stowage_testing.worker import NOTES_SCHEMA as NOTES_SCHEMA

COLLECTIONS = [{"name": "notes", "schemaVersion": 1, "schema": NOTES_SCHEMA}]
WORKER_POLICY: dict[str, Any] = {
    "retention": {"collections": {"cache": 1}},
    "quotas": {"maxObjects": 100000, "maxBytes": "1Gi", "maxObjectBytes": "16Ki"},
    "collections": COLLECTIONS,
}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(claims: dict[str, Any]) -> str:
    """``alg: none``: a token with no signature at all."""
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{b64(json.dumps(claims).encode())}."


def hmac_with_public_key(key: RSAKey, claims: dict[str, Any]) -> str:
    """HS256 keyed with the issuer's public key: the classic algorithm-confusion forgery."""
    public_pem = key.as_pem(private=False)
    header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


@dataclass
class GatewayProcess:
    """``stowage gateway serve`` as a subprocess, on its own port."""

    workdir: Path
    port: int = field(default_factory=free_port)
    redis_url: str | None = None
    extra_args: tuple[str, ...] = ()
    #: Run under cProfile, writing the profile here on exit (benchmarks).
    profile_to: Path | None = None
    #: More environment for the process (``OTEL_*`` for a traced gateway).
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def tenants_file(self) -> Path:
        return self.workdir / "tenants.yaml"

    @property
    def log_file(self) -> Path:
        return self.workdir / f"gateway-{self.port}.log"

    def url(self, tenant: str) -> str:
        return f"{self.base}/t/{tenant}/mcp"

    def write_tenants(self, tenants: list[dict[str, Any]]) -> None:
        tmp = self.tenants_file.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump({"tenants": tenants}))
        tmp.replace(self.tenants_file)

    def start(self, timeout: float = 30.0) -> None:
        profiler = ["-m", "cProfile", "-o", str(self.profile_to)] if self.profile_to else []
        args = [
            sys.executable, *profiler, "-m", "stowage", "gateway", "serve",
            "--tenants-file", str(self.tenants_file),
            "--port", str(self.port),
            "--reload-interval", "0.1",
            "--call-timeout", "3",
            *self.extra_args,
        ]  # fmt: skip
        if self.redis_url:
            args += ["--redis-url", self.redis_url]
        log = self.log_file.open("ab")
        env = {**os.environ, "STOWAGE_GATEWAY_JWKS_MIN_REFRESH": "30", **self.env}
        self.proc = subprocess.Popen(args, stdout=log, stderr=log, env=env)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited: {self.logs()[-3000:]}")
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"gateway not ready after {timeout}s: {self.logs()[-3000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        terminate(self.proc)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def logs(self) -> str:
        return self.log_file.read_text() if self.log_file.exists() else ""

    def log_lines(self) -> list[dict[str, Any]]:
        """The gateway's JSON log lines (those of all its processes with ``--processes``)."""
        lines = []
        for line in self.logs().splitlines():
            if line.startswith("{"):
                with suppress(ValueError):
                    lines.append(json.loads(line))
        return lines

    def serving_pids(self) -> set[int]:
        """With ``--processes``: the live processes of this gateway that accept connections."""
        assert self.proc is not None
        return {
            int(line["pid"])
            for line in self.log_lines()
            if line.get("msg") == READY_MESSAGE and _child_of(int(line["pid"]), self.proc.pid)
        }

    def wait_for_processes(self, count: int, timeout: float = 60.0) -> set[int]:
        """The pids of ``count`` serving processes, once that many accept connections."""
        deadline = time.monotonic() + timeout
        while len(pids := self.serving_pids()) != count:
            if not self.alive():
                raise RuntimeError(f"gateway exited: {self.logs()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{count} gateway processes not serving after {timeout}s")
            time.sleep(0.05)
        return pids


def _child_of(pid: int, parent: int) -> bool:
    """True when ``pid`` is a live (not reaped-pending) child of ``parent``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state, ppid = stat.rsplit(")", 1)[1].split()[:2]
    return state != "Z" and int(ppid) == parent


def tenant_entry(
    name: str, gateway: GatewayProcess, issuer: Issuer, endpoint: str, **spec: Any
) -> dict[str, Any]:
    issuer.serve(gateway.url(name))
    return {
        "name": name,
        "endpoint": endpoint,
        "auth": {"issuer": issuer.url, "audience": gateway.url(name)},
        "collections": COLLECTIONS,
        "retention": WORKER_POLICY["retention"],
        **spec,
    }


@contextmanager
def running_gateway(
    workdir: Path, tenants: list[dict[str, Any]] | None = None, **kw: Any
) -> Iterator[GatewayProcess]:
    workdir.mkdir(parents=True, exist_ok=True)
    gateway = GatewayProcess(workdir=workdir, **kw)
    if tenants is not None:
        gateway.write_tenants(tenants)
    try:
        gateway.start()
        yield gateway
    finally:
        gateway.stop()


@contextmanager
def running_processes(
    workdir: Path,
    tenants: list[dict[str, Any]] | None = None,
    *,
    processes: int,
    timeout: float = 120.0,
    **kw: Any,
) -> Iterator[GatewayProcess]:
    """A gateway of ``processes`` processes (Redis in ``kw``), once every one of them serves.

    A supervisor and its processes start several interpreters at once, hence
    the longer ``timeout`` than a single gateway's.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    extra_args = (*kw.pop("extra_args", ()), "--processes", str(processes))
    gateway = GatewayProcess(workdir=workdir, extra_args=extra_args, **kw)
    if tenants is not None:
        gateway.write_tenants(tenants)
    try:
        gateway.start(timeout=timeout)
        if processes > 1:
            gateway.wait_for_processes(processes, timeout=timeout)
        yield gateway
    finally:
        gateway.stop()


@asynccontextmanager
async def mcp_client(
    url: str, token: str, *, request_id: str | None = None, mode: str = "auto"
) -> AsyncIterator[Client]:
    """The ``mcp`` SDK client over real HTTP with a bearer token."""
    headers = {"Authorization": f"Bearer {token}"}
    if request_id:
        headers["X-Request-Id"] = request_id
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        yield client


def rpc(method: str, params: dict[str, Any] | None = None, id: int = 1) -> dict[str, Any]:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": id, "method": method}
    if params is not None:
        body["params"] = params
    return body


MCP_HEADERS = {
    "content-type": "application/json",
    "accept": "application/json, text/event-stream",
    "mcp-protocol-version": "2025-11-25",
}


def post(url: str, body: Any, token: str | None = None, **headers: str) -> httpx.Response:
    """One raw JSON-RPC POST, for checks below the SDK (status codes, headers)."""
    all_headers = {**MCP_HEADERS, **headers}
    if token is not None:
        all_headers["authorization"] = f"Bearer {token}"
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(url, content=content, headers=all_headers, timeout=30)


def tool_error(result: Any) -> dict[str, Any]:
    """A tool error's details, checked to be the same in ``_meta`` and in the text.

    ``result`` is an SDK ``CallToolResult`` or the raw JSON-RPC ``result`` object.
    An error carries no ``structuredContent`` (it would not match the output schema).
    """
    if isinstance(result, dict):
        assert result.get("isError") is True, result
        assert "structuredContent" not in result, result
        meta, text = result["_meta"], result["content"][0]["text"]
    else:
        assert result.is_error, result
        assert result.structured_content is None, result
        meta, text = result.meta or {}, result.content[0].text
    details: dict[str, Any] = meta[TOOL_ERROR_META_KEY]
    assert json.loads(text) == details
    return details
