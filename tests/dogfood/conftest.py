"""Real parts for the dogfood check: an issuer, one gateway, a worker on PostgreSQL per tenant.

The check itself runs as ``.venv/bin/stowage dogfood`` in a subprocess, so its
exit status and printed lines are what a platform team sees.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from stowage_testing.gateway import (
    NOTES_SCHEMA,
    GatewayProcess,
    Issuer,
    post,
    rpc,
    running_gateway,
    running_issuer,
    tenant_entry,
)
from stowage_testing.postgres import PostgresServer
from stowage_testing.tools import eventually
from stowage_testing.worker import WorkerProcess, running_worker

STOWAGE = Path(sys.executable).with_name("stowage")
TEST_USER = "dogfood-tester"
NOTES_V1: list[dict[str, Any]] = [{"name": "notes", "schemaVersion": 1, "schema": NOTES_SCHEMA}]
_LINE = re.compile(r"^(PASS|FAIL|N/A|SKIP)\s+(\S+)\s+(.*)$")


@pytest.fixture(scope="session")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Issuer]:
    with running_issuer(tmp_path_factory.mktemp("issuer")) as found:
        yield found


@dataclass
class Gateway:
    """One gateway process; each test adds its own tenant to its tenants file."""

    process: GatewayProcess
    tenants: dict[str, dict[str, Any]] = field(default_factory=dict)

    def put(self, entry: dict[str, Any]) -> None:
        self.tenants[entry["name"]] = entry
        self.process.write_tenants(list(self.tenants.values()))


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    workdir = tmp_path_factory.mktemp("gateway")
    process = GatewayProcess(workdir=workdir)
    process.write_tenants([])
    with running_gateway(workdir, port=process.port) as started:
        yield Gateway(started)


@dataclass
class Tenant:
    """A tenant served by the gateway and its own worker, with collections to change."""

    name: str
    worker: WorkerProcess
    gateway: Gateway
    issuer: Issuer
    quotas: dict[str, Any]

    @property
    def url(self) -> str:
        return self.gateway.process.url(self.name)

    def token(self, user: str = TEST_USER, **kw: Any) -> str:
        return self.issuer.token(self.url, subject=user, **kw)

    def declare(self, collections: list[dict[str, Any]]) -> None:
        """Give worker and gateway these collections; wait until both serve them."""
        self.worker.write_policy({"quotas": self.quotas, "collections": collections})
        entry = tenant_entry(
            self.name,
            self.gateway.process,
            self.issuer,
            self.worker.address,
            retention={},
            # Room for the polling below; the check's own calls fit the defaults.
            rateLimits={
                "perUser": {"requestsPerMinute": 6000, "burst": 1000},
                "perTenant": {"requestsPerMinute": 60000, "burst": 10000},
            },
        )
        self.gateway.put({**entry, "collections": collections})
        probe = self.token("probe-user")
        listed = {c["name"] for c in collections}

        def gateway_serves_them() -> bool:
            response = post(self.url, rpc("tools/list"), probe)
            names = (
                {t["name"] for t in response.json()["result"]["tools"]}
                if response.is_success
                else set()
            )
            return {f"{c}_save" for c in listed} <= names and not any(
                n.endswith("_save") and n[: -len("_save")] not in listed | {"items"} for n in names
            )

        eventually(gateway_serves_them, timeout=15, what="the gateway serves the collections")
        for c in collections:
            self.wait_for_worker_version(c["name"], c.get("schemaVersion", 1), probe)

    def wait_for_worker_version(self, collection: str, version: int, token: str) -> None:
        schema = next(
            c["schema"] for c in self.gateway.tenants[self.name]["collections"]
            if c["name"] == collection
        )  # fmt: skip
        data = {key: [] if key == "tags" else "probe" for key in schema.get("required", [])}

        def worker_writes_at_version() -> bool:
            call = rpc("tools/call", {"name": f"{collection}_save", "arguments": {"data": data}})
            reply = post(self.url, call, token)
            assert reply.is_success, reply.text
            saved = reply.json()["result"].get("structuredContent") or {}
            return saved.get("object", {}).get("schema_version") == version

        eventually(
            worker_writes_at_version,
            timeout=15,
            what=f"the worker saves {collection} at v{version}",
        )

    def call(self, tool: str, arguments: dict[str, Any], user: str) -> dict[str, Any]:
        body = post(
            self.url, rpc("tools/call", {"name": tool, "arguments": arguments}), self.token(user)
        )
        result: dict[str, Any] = body.json()["result"]
        return result


@pytest.fixture
def tenant(
    postgres: PostgresServer, issuer: Issuer, gateway: Gateway, tmp_path: Path
) -> Iterator[Tenant]:
    """A fresh tenant (own database and worker) declaring notes at schema version 1."""
    url = postgres.sqlalchemy_url(postgres.create_database("dogfood"))
    quotas = {"maxObjects": 1000, "maxBytes": "1Mi", "maxObjectBytes": "16Ki"}
    name = f"dog-{uuid.uuid4().hex[:8]}"
    with running_worker(url, tmp_path / "worker", {"quotas": quotas}, tenant=name) as worker:
        found = Tenant(name, worker, gateway, issuer, quotas)
        found.declare(copy.deepcopy(NOTES_V1))
        yield found


@dataclass(frozen=True)
class Ran:
    """What a person running ``stowage dogfood`` saw."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def steps(self) -> dict[str, tuple[str, str]]:
        """Step name → (status, detail), from the printed lines."""
        found = {}
        for line in self.stdout.splitlines():
            m = _LINE.match(line)
            if m:
                found[m.group(2)] = (m.group(1), m.group(3))
        return found

    def __str__(self) -> str:
        return f"exit {self.returncode}\n{self.stdout}\n{self.stderr}"


def dogfood(
    *args: str, token: str | None = None, env_token: str | None = None, tmp: Path | None = None
) -> Ran:
    """``stowage dogfood ARGS`` with the token in a file (``token``) or the environment."""
    argv = [str(STOWAGE), "dogfood", *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOWAGE_DOGFOOD_")}
    if token is not None:
        assert tmp is not None, "a token file needs a directory"
        token_file = tmp / f"token-{uuid.uuid4().hex[:6]}"
        token_file.write_text(token + "\n")
        argv += ["--token-file", str(token_file)]
    if env_token is not None:
        env["STOWAGE_DOGFOOD_TOKEN"] = env_token
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=90)
    return Ran(done.returncode, done.stdout, done.stderr)
