"""``stowage spaces list``, as an operator runs it against a tenant's real worker.

The command is a client of ``ListTenantSpaces``, which ``test_sign_in`` checks
on both backends; here it runs once, on PostgreSQL, as its own process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable

import pytest

from stowage.v1 import worker_pb2 as pb
from stowage_testing.postgres import PostgresServer
from stowage_testing.worker import WorkerProcess
from tests.spaces.conftest import Member


@pytest.fixture(scope="module")
def backend(postgres: PostgresServer) -> str:
    return "postgres"


def _stowage(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stowage", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_the_support_command_lists_handles_roles_and_sizes_and_nothing_the_users_wrote(
    member: Callable[..., Member], worker: WorkerProcess
) -> None:
    secret = f"secret-{uuid.uuid4().hex}"
    alice, bob = member(f"Alice {secret[:16]}", f"{secret}@example.test"), member("Bob")
    space = alice.create(f"Name {secret}")
    alice.invite(space, bob, role="viewer")
    alice.put(space, "plan", {"items": [secret]})
    detail = alice.call("GetSpace", pb.GetSpaceRequest(space=space))
    handles = {m.member: m.role for m in detail.members}

    shown = _stowage(
        "spaces", "list", "--tenant", "acme", env={"STOWAGE_SPACES_WORKER": worker.address}
    )
    assert shown.returncode == 0, shown.stderr
    table = shown.stdout.splitlines()
    row = next(i for i, line in enumerate(table) if line.startswith(space))
    assert table[row].split()[1:4] == ["space", "2", "1"]
    assert table[row].split()[4] == str(detail.space.bytes)
    members = {line.split()[0]: line.split()[1] for line in table[row + 1 : row + 3]}
    assert members == handles
    assert table[-1] == "1 space(s) of tenant acme"

    as_json = _stowage("spaces", "list", "--tenant", "acme", "--worker", worker.address, "--json")
    assert as_json.returncode == 0, as_json.stderr
    (listed,) = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert listed["id"] == space and listed["objects"] == 1 and "name" not in listed
    assert {m["member"]: m["role"] for m in listed["members"]} == handles
    for words in (secret, "Alice", "Bob", alice.subject, alice.user_id, "example.test"):
        assert words not in shown.stdout + as_json.stdout

    wrong = _stowage("spaces", "list", "--tenant", "other", "--worker", worker.address)
    assert wrong.returncode == 1
    assert wrong.stderr.splitlines()[-1].startswith(
        "stowage spaces: cannot list the spaces of other: "
    )
    assert wrong.stdout == ""
