"""Several gateway processes on one port (``--processes``), supervised by one parent.

Which process serves a connection is the kernel's choice, so each check opens
new connections until both processes have served some. A connection is
traced to its process by a tool call on it: the call's correlation id (sent
as ``X-Request-Id``) is in the ``tool call`` log line of the process that
served it, and that line carries the process's ``pid``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway._settings import GatewaySettings
from stowage_testing.gateway import (
    MCP_HEADERS,
    GatewayProcess,
    Issuer,
    rpc,
    running_processes,
    tenant_entry,
)
from stowage_testing.redis import running_redis
from stowage_testing.tools import eventually
from tests.gateway.conftest import WorkerFor

# Three interpreters start for each gateway here; a busy machine takes its time.
pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(300)]

#: Connections opened at most while waiting for both processes to serve some.
MAX_CONNECTIONS = 200
TIGHT = {
    "rateLimits": {
        "perUser": {"requestsPerMinute": 1, "burst": 4},
        "perTenant": {"requestsPerMinute": 1, "burst": 1000},
    }
}


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with running_redis() as url:
        yield url


@pytest.fixture
def gateway_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The TMPDIR of the gateways started in this test (where a supervisor keeps its metrics)."""
    tmp = tmp_path / "gateway-tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    return tmp


@pytest.fixture
def pair(
    worker_for: WorkerFor, issuer: Issuer, redis_url: str, tmp_path: Path, gateway_tmp: Path
) -> Iterator[GatewayProcess]:
    """A gateway of two processes sharing Redis, serving tenants acme and tight."""
    shell = GatewayProcess(workdir=tmp_path)
    tenants = [
        tenant_entry("acme", shell, issuer, worker_for("acme").address),
        tenant_entry("tight", shell, issuer, worker_for("tight").address, **TIGHT),
    ]
    with running_processes(
        tmp_path, tenants, processes=2, port=shell.port, redis_url=redis_url
    ) as started:
        yield started


def tool_call(n: int = 1) -> dict[str, Any]:
    return rpc("tools/call", {"name": "items_list", "arguments": {}}, id=n)


def call_on(http: httpx.Client, url: str, token: str) -> httpx.Response:
    """One tool call on ``http``'s connection, with a fresh correlation id."""
    headers = {
        **MCP_HEADERS,
        "authorization": f"Bearer {token}",
        "x-request-id": f"proc-{uuid.uuid4().hex}",
    }
    return http.post(url, json=tool_call(), headers=headers)


def served_by(gateway: GatewayProcess, response: httpx.Response) -> int:
    """The pid of the process that logged the tool call ``response`` answers."""
    assert response.status_code == 200, response.text
    cid = response.headers["x-request-id"]
    pids = [
        int(line["pid"])
        for line in gateway.log_lines()
        if line.get("msg") == "tool call" and line.get("correlation_id") == cid
    ]
    assert len(pids) == 1, (cid, pids)
    return pids[0]


def new_connection() -> httpx.Client:
    """A client that keeps one connection for its requests (a new one each time)."""
    return httpx.Client(timeout=30, limits=httpx.Limits(max_connections=1))


def metric(text: str, name: str, **labels: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_both_processes_serve_tool_calls_health_and_the_summed_metrics(
    pair: GatewayProcess, issuer: Issuer
) -> None:
    url = pair.url("acme")
    token = issuer.token(url, subject=f"spread-{uuid.uuid4().hex[:6]}")
    calls: Counter[int] = Counter()
    #: Each process's last /metrics, and the calls answered before it.
    scrapes: dict[int, tuple[int, str]] = {}
    for _ in range(MAX_CONNECTIONS):
        with new_connection() as http:
            pid = served_by(pair, call_on(http, url, token))
            calls[pid] += 1
            # The same connection, so the same process, answers these.
            assert http.get(f"{pair.base}/healthz").status_code == 200
            assert http.get(f"{pair.base}/readyz").json()["status"] == "ready"
            scrapes[pid] = (calls.total(), http.get(f"{pair.base}/metrics").text)
        if len(calls) == 2:
            break
    assert set(calls) == pair.serving_pids(), calls
    # Either process's /metrics counts the calls both have answered so far.
    for pid, (answered, text) in scrapes.items():
        counted = metric(text, "stowage_gateway_tool_calls_total", tenant="acme")
        assert counted == answered, (pid, counted, answered, calls)
    with new_connection() as http:
        text = http.get(f"{pair.base}/metrics").text
    total = calls.total()
    ok = {"tenant": "acme", "tool": "items_list", "outcome": "ok"}
    assert metric(text, "stowage_gateway_tool_calls_total", **ok) == total
    assert metric(text, "stowage_gateway_tool_call_seconds_count", tenant="acme") == total
    assert metric(text, "stowage_gateway_mcp_requests_total", tenant="acme", status="200") == total


def test_the_per_user_rate_limit_holds_across_both_processes(
    pair: GatewayProcess, issuer: Issuer
) -> None:
    url = pair.url("tight")
    limited = issuer.token(url, subject=f"bursty-{uuid.uuid4().hex[:6]}")
    probe_url = pair.url("acme")
    probe = issuer.token(probe_url, subject="probe")
    statuses: dict[int, list[int]] = {}
    for _ in range(MAX_CONNECTIONS):
        with new_connection() as http:
            status = call_on(http, url, limited).status_code
            pid = served_by(pair, call_on(http, probe_url, probe))
        statuses.setdefault(pid, []).append(status)
        # Past its burst (4) at each process: separate buckets would admit 8 calls.
        if len(statuses) == 2 and min(len(s) for s in statuses.values()) > 4:
            break
    assert len(statuses) == 2 and min(len(s) for s in statuses.values()) > 4, statuses
    every = [s for per_process in statuses.values() for s in per_process]
    assert every.count(200) == 4, statuses
    assert set(every) == {200, 429}, statuses


def test_a_killed_gateway_process_is_replaced(pair: GatewayProcess, issuer: Issuer) -> None:
    first = pair.serving_pids()
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    eventually(
        lambda: victim not in pair.serving_pids() and len(pair.serving_pids()) == 2,
        timeout=120,
        what="a new gateway process in place of the killed one",
    )
    assert pair.alive()
    (replacement,) = pair.serving_pids() - first
    url = pair.url("acme")
    token = issuer.token(url, subject="after-kill")
    seen: set[int] = set()
    for _ in range(MAX_CONNECTIONS):
        with new_connection() as http:
            seen.add(served_by(pair, call_on(http, url, token)))
        if replacement in seen:
            break
    assert replacement in seen and victim not in seen, seen


def test_sigterm_stops_every_gateway_process_and_leaves_nothing_behind(
    pair: GatewayProcess, gateway_tmp: Path
) -> None:
    children = pair.serving_pids()
    assert any(gateway_tmp.iterdir()), "the metrics directory lives in TMPDIR"
    assert pair.proc is not None
    pair.proc.send_signal(signal.SIGTERM)
    assert pair.proc.wait(timeout=60) == 0
    assert not [pid for pid in children if alive(pid)]
    assert list(gateway_tmp.iterdir()) == []


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stowage", "gateway", "serve", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_a_taken_port_fails_loudly_and_is_never_shared(
    pair: GatewayProcess, issuer: Issuer, redis_url: str
) -> None:
    serving = pair.serving_pids()
    common = ("--tenants-file", str(pair.tenants_file), "--port", str(pair.port))
    rival = _serve(*common, "--processes", "2", "--redis-url", redis_url)
    assert rival.returncode == 1, rival.stderr
    assert f"cannot listen on 127.0.0.1:{pair.port}" in rival.stderr
    single = _serve(*common)
    assert single.returncode != 0, single.stderr
    assert "address already in use" in single.stderr
    assert pair.serving_pids() == serving
    url = pair.url("acme")
    with new_connection() as http:
        assert served_by(pair, call_on(http, url, issuer.token(url))) in serving


def test_more_than_one_process_without_redis_is_refused(tmp_path: Path) -> None:
    tenants = tmp_path / "tenants.yaml"
    tenants.write_text("tenants: []\n")
    by_flag = _serve("--tenants-file", str(tenants), "--processes", "2")
    by_variable = _serve("--tenants-file", str(tenants), env={"STOWAGE_GATEWAY_PROCESSES": "2"})
    for refused in (by_flag, by_variable):
        assert refused.returncode == 2, refused.stderr
        assert "--processes 2 needs --redis-url / $STOWAGE_REDIS_URL" in refused.stderr
    help_text = _serve("--help").stdout
    assert "--processes" in help_text and "STOWAGE_GATEWAY_PROCESSES" in help_text


def test_a_supervisor_hands_its_processes_the_same_settings_as_variables() -> None:
    env = {
        "STOWAGE_REDIS_URL": "redis://r:6379/0",
        "STOWAGE_REDIS_PASSWORD": "p@ss",
        "STOWAGE_GATEWAY_PROCESSES": "3",
    }
    parent = GatewaySettings.from_env(
        env, allowed_hosts=("a.example", "b:*"), tenants_file=Path("/t.yaml"), call_timeout=2.5
    )
    # The password travels inside the URL's variable, never on a command line.
    assert parent.environ()["STOWAGE_REDIS_URL"] == "redis://:p%40ss@r:6379/0"
    assert GatewaySettings.from_env(parent.environ()) == parent
