"""One /metrics over several processes' sample files, while one of them is starting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from prometheus_client import generate_latest

from stowage.runtime.metrics import summed_registry

#: A process that counts 3 calls into the directory, as a worker or gateway process does.
_COUNTING = """
from prometheus_client import Counter
Counter("stowage_test_calls", "Calls.").inc(3)
"""


def _count_in(directory: Path) -> None:
    env = {"PROMETHEUS_MULTIPROC_DIR": str(directory), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", _COUNTING], env=env, check=True, timeout=60)


def test_a_process_that_has_not_written_its_file_yet_does_not_fail_the_scrape(
    tmp_path: Path,
) -> None:
    _count_in(tmp_path)
    _count_in(tmp_path)
    # A process just started: its file exists and holds nothing yet. prometheus-client's own
    # collector fails on it (a 500 to Prometheus) until the process writes its header.
    (tmp_path / "counter_999999.db").touch()
    text = generate_latest(summed_registry(str(tmp_path))).decode()
    assert "stowage_test_calls_total 6.0" in text
