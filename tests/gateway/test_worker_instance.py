"""The gateway calls a tenant's worker as the instance its entry names; another answers no data.

A worker of the same tenant but another run (one a killed ``stowage dev`` left
on the port, a stale endpoint after a restore) refuses the gateway's calls, and
the gateway logs that loudly and answers the tool call with an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stowage_testing.gateway import (
    WORKER_POLICY,
    GatewayProcess,
    Issuer,
    post,
    rpc,
    running_gateway,
    tenant_entry,
    tool_error,
)
from stowage_testing.tools import eventually
from stowage_testing.worker import WorkerProcess, running_worker

REFUSED = "this worker is instance 'run-a' of tenant 'acme'; the call was for instance 'run-b'"


@pytest.fixture
def run_a(tmp_path: Path) -> Iterator[WorkerProcess]:
    """Tenant acme's worker, instance ``run-a``."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'acme.db'}"
    with running_worker(url, tmp_path / "worker", WORKER_POLICY, instance="run-a") as worker:
        yield worker


def route(g: GatewayProcess, issuer: Issuer, worker: WorkerProcess, instance: str) -> None:
    """Write the gateway's tenants file: acme at ``worker``'s address, as ``instance``."""
    g.write_tenants([tenant_entry("acme", g, issuer, worker.address, instance=instance)])


def outcome(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    if result.get("isError"):
        return {"is_error": True, **tool_error(result)}
    return {"is_error": False, **result["structuredContent"]}


def save(key: str, value: str) -> dict[str, Any]:
    args = {"id": "doc", "data": {"from": value}, "idempotency_key": key}
    return rpc("tools/call", {"name": "items_save", "arguments": args})


GET = rpc("tools/call", {"name": "items_get", "arguments": {"id": "doc"}})


def refusals_logged(g: GatewayProcess) -> list[str]:
    return [
        line["msg"]
        for line in g.log_lines()
        if line.get("level") == "error" and "refused a call as not its own" in line.get("msg", "")
    ]


def test_a_worker_of_another_instance_gives_errors_until_the_entry_names_it(
    run_a: WorkerProcess, issuer: Issuer, tmp_path: Path
) -> None:
    g = GatewayProcess(workdir=tmp_path / "gw")
    g.workdir.mkdir()
    route(g, issuer, run_a, "run-b")
    with running_gateway(g.workdir, port=g.port):
        url = g.url("acme")
        token = issuer.token(url, subject="someone")
        refused = outcome(post(url, save("k1", "refused"), token))
        assert refused["is_error"] and refused["error"]["code"] == "unavailable"
        assert "object" not in refused
        eventually(lambda: refusals_logged(g), what="the refusal is logged as an error")
        assert REFUSED in refusals_logged(g)[0]

        route(g, issuer, run_a, "run-a")
        eventually(
            lambda: not outcome(post(url, save("k2", "served"), token))["is_error"],
            timeout=20,
            what="the gateway serves once its entry names the worker's instance",
        )
        stored = outcome(post(url, GET, token))["object"]
        assert stored["data"] == {"from": "served"}
        assert stored["version"] == 1  # the refused save wrote nothing


def test_a_served_tenant_whose_worker_is_another_instance_gets_a_tool_error_not_data(
    run_a: WorkerProcess, issuer: Issuer, tmp_path: Path
) -> None:
    g = GatewayProcess(workdir=tmp_path / "gw")
    g.workdir.mkdir()
    route(g, issuer, run_a, "run-a")
    with running_gateway(g.workdir, port=g.port):
        url = g.url("acme")
        token = issuer.token(url, subject="someone")
        assert not outcome(post(url, save("k1", "run-a"), token))["is_error"]

        route(g, issuer, run_a, "run-b")
        eventually(
            lambda: outcome(post(url, GET, token))["is_error"],
            timeout=20,
            what="the gateway calls the worker as instance run-b",
        )
        read = outcome(post(url, GET, token))
        assert "object" not in read
        assert read["error"]["code"] == "unavailable"
        assert read["error"]["retriable"] is True
        assert "not this tenant's" in read["error"]["message"]
        assert "run-a" not in str(read)  # the worker's details stay in the gateway's log
        assert REFUSED in refusals_logged(g)[-1]
        metrics = httpx.get(f"{g.base}/metrics").text
        assert 'stowage_gateway_upstream_errors_total{code="PERMISSION_DENIED",tenant="acme"}' in (
            metrics
        )
