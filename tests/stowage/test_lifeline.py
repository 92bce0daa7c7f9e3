"""A ``stowage`` command told to end with its parent: it follows it, or exits when it is gone."""

from __future__ import annotations

import os
import subprocess
import sys

from stowage.runtime.lifeline import FOLLOW_PARENT_ENV


def test_a_command_whose_parent_is_gone_already_exits_before_it_runs() -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    done = subprocess.run(
        [sys.executable, "-m", "stowage", "--help"],
        env={**os.environ, FOLLOW_PARENT_ENV: str(gone.pid)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert f"the supervising process {gone.pid} is gone" in done.stderr
    assert done.stdout == ""


#: Follows the parent named in its environment, then asks a child of its own for the variable.
FOLLOWER = f"""
import os, subprocess, sys
from stowage.runtime.lifeline import follow_parent_named_in
follow_parent_named_in(os.environ)
child = "import os; print(os.environ.get({FOLLOW_PARENT_ENV!r}, 'unset'))"
print(subprocess.run([sys.executable, "-c", child], capture_output=True, text=True).stdout)
"""


def test_a_command_that_follows_its_parent_runs_and_hides_the_variable_from_its_children() -> None:
    done = subprocess.run(
        [sys.executable, "-c", FOLLOWER],
        env={**os.environ, FOLLOW_PARENT_ENV: str(os.getpid())},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "unset"


def test_a_value_that_is_not_a_process_id_is_refused() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "stowage", "--help"],
        env={**os.environ, FOLLOW_PARENT_ENV: "me"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert f"${FOLLOW_PARENT_ENV}: 'me' is not a process id" in done.stderr
