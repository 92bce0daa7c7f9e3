"""Several worker processes on one port (``--processes``), supervised by one parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from stowage_testing.tools import eventually
from stowage_testing.worker import WorkerProcess
from tests.tenant_worker.conftest import POLICY, Client, status_of

MakeWorker = Callable[[dict[str, Any]], WorkerProcess]


@pytest.fixture
def tmpdir_of_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Workers started in this test run with two processes and their own TMPDIR."""
    tmp = tmp_path / "worker-tmp"
    tmp.mkdir()
    monkeypatch.setenv("STOWAGE_WORKER_PROCESSES", "2")
    monkeypatch.setenv("TMPDIR", str(tmp))
    return tmp


@pytest.fixture
def pair(make_worker: MakeWorker, tmpdir_of_worker: Path) -> Iterator[WorkerProcess]:
    w = make_worker(POLICY)
    eventually(lambda: len(_per_process(w)) == 2, timeout=30, what="both processes report")
    yield w


def _samples(w: WorkerProcess) -> list[Any]:
    url = f"http://127.0.0.1:{w.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def _per_process(w: WorkerProcess) -> dict[int, float]:
    """RPCs handled by each live worker process, by pid."""
    return {
        int(s.labels["pid"]): s.value
        for s in _samples(w)
        if s.name == "stowage_worker_process_rpcs"
    }


def _rpcs(w: WorkerProcess, **labels: str) -> float:
    return sum(
        s.value
        for s in _samples(w)
        if s.name == "stowage_worker_rpcs_total"
        and all(s.labels.get(k) == v for k, v in labels.items())
    )


def _one_call_on_a_new_connection(w: WorkerProcess, user_id: str) -> None:
    with grpc.insecure_channel(w.address) as channel:
        missing = Client(channel, user_id).get
        assert status_of(lambda: missing("items", "nothing")).code() == grpc.StatusCode.NOT_FOUND


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_two_processes_serve_one_port_and_the_metrics_sum_their_calls(
    pair: WorkerProcess,
) -> None:
    with grpc.insecure_channel(pair.address) as channel:
        user = Client(channel).as_new_user().user_id
    calls = 0
    # Each connection lands on one process, chosen by the kernel: both get some soon.
    while calls < 200 and min(_per_process(pair).values()) == 0:
        _one_call_on_a_new_connection(pair, user)
        calls += 1
    per_process = _per_process(pair)
    assert len(per_process) == 2 and min(per_process.values()) > 0, per_process
    assert _rpcs(pair, method="GetObject", code="NOT_FOUND") == calls
    assert sum(per_process.values()) == _rpcs(pair) == calls + 1  # and the ResolveUser


def test_a_killed_worker_process_is_replaced(pair: WorkerProcess) -> None:
    first = set(_per_process(pair))
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    eventually(
        lambda: victim not in _per_process(pair) and len(_per_process(pair)) == 2,
        timeout=30,
        what="a new worker process in place of the killed one",
    )
    assert pair.proc is not None and pair.proc.poll() is None
    with grpc.insecure_channel(pair.address) as channel:
        client = Client(channel).as_new_user()
        assert client.put("items", "after", {"v": 1}).object.version == 1


def test_sigterm_stops_every_worker_process_and_leaves_nothing_behind(
    pair: WorkerProcess, tmpdir_of_worker: Path
) -> None:
    children = set(_per_process(pair))
    assert any(tmpdir_of_worker.iterdir()), "the metrics directory lives in TMPDIR"
    assert pair.proc is not None
    pair.proc.send_signal(signal.SIGTERM)
    assert pair.proc.wait(timeout=30) == 0
    assert not [pid for pid in children if _alive(pid)]
    assert list(tmpdir_of_worker.iterdir()) == []


def test_a_supervisor_on_a_taken_port_fails_loudly_and_never_shares_it(
    worker: WorkerProcess,
) -> None:
    rival = subprocess.run(
        [sys.executable, "-m", "stowage", "worker", "serve",
         "--database-url", worker.database_url, "--tenant", "globex",
         "--listen", worker.address, "--metrics-port", "0", "--processes", "2"],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert rival.returncode == 1, rival.stderr
    assert f"cannot listen on {worker.address}" in rival.stderr
    with grpc.insecure_channel(worker.address) as channel:
        client = Client(channel).as_new_user()
        assert client.put("items", "still-mine", {"v": 1}).object.version == 1
