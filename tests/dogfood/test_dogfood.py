"""``stowage dogfood`` against a real gateway and worker on PostgreSQL, as a subprocess."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.dogfood.conftest import NOTES_V1, TEST_USER, Tenant, dogfood

pytestmark = pytest.mark.postgres

STEPS = ["save", "conflict", "replay", "quota", "older-schema", "export", "erase", "canary"]


def notes_v2(*, with_upgrade: bool) -> list[dict[str, Any]]:
    """notes at schema version 2: ``tags`` became required; v1 objects get ``tags: []``."""
    (notes,) = copy.deepcopy(NOTES_V1)
    notes["schemaVersion"] = 2
    notes["schema"]["required"] = ["title", "tags"]
    if with_upgrade:
        notes["upgrades"] = [{"fromVersion": 1, "defaults": {"tags": []}}]
    return [notes]


def statuses(ran: Any) -> dict[str, str]:
    return {step: status for step, (status, _) in ran.steps.items()}


def test_every_step_passes_once_a_declared_collection_has_moved_to_a_newer_schema_version(
    tenant: Tenant, tmp_path: Path
) -> None:
    kept = tenant.call("items_save", {"id": "keep", "data": {"mine": True}}, user="alice")
    assert not kept["isError"]

    first = dogfood("--mcp-url", tenant.url, "--max-object-bytes", "16Ki",
                    token=tenant.token(), tmp=tmp_path)  # fmt: skip
    assert first.returncode == 0, first
    older = first.steps["older-schema"]
    assert older[0] == "N/A" and "no canary from an earlier run" in older[1], first
    assert first.steps["canary"] == (
        "PASS",
        "left notes/dogfood-canary-v1 (the test user's only data) for the next run to read "
        "back after a schema change",
    )

    tenant.declare(notes_v2(with_upgrade=True))
    second = dogfood("--mcp-url", tenant.url, "--max-object-bytes", "16Ki",
                     token=tenant.token(), tmp=tmp_path)  # fmt: skip

    assert second.returncode == 0, second
    assert statuses(second) == dict.fromkeys(STEPS, "PASS"), second
    assert second.steps["older-schema"][1] == (
        "notes: dogfood-canary-v1 (stored at 1) read back at schema version 2, valid"
    )
    assert "16398-byte object was refused" in second.steps["quota"][1]
    assert second.stdout.splitlines()[-1].startswith("8 passed, 0 failed, 0 not applicable")
    left = tenant.call("my_data_export", {}, user=TEST_USER)["structuredContent"]["objects"]
    assert [(o["collection"], o["id"], o["schema_version"]) for o in left] == [
        ("notes", "dogfood-canary-v2", 2)
    ]
    other = tenant.call("items_get", {"id": "keep"}, user="alice")["structuredContent"]
    assert other["object"]["data"] == {"mine": True}


def test_a_schema_change_that_leaves_stored_objects_invalid_fails_the_older_schema_step(
    tenant: Tenant, tmp_path: Path
) -> None:
    assert dogfood("--mcp-url", tenant.url, token=tenant.token(), tmp=tmp_path).returncode == 0
    tenant.declare(notes_v2(with_upgrade=False))

    ran = dogfood("--mcp-url", tenant.url, token=tenant.token(), tmp=tmp_path)

    assert ran.returncode == 1, ran
    status, detail = ran.steps["older-schema"]
    assert status == "FAIL"
    assert "'tags' is a required property" in detail
    assert [ran.steps[s][0] for s in ("export", "erase", "canary")] == ["SKIP"] * 3


def test_a_stopped_worker_fails_the_save_step_by_name(tenant: Tenant, tmp_path: Path) -> None:
    tenant.worker.stop()

    ran = dogfood("--mcp-url", tenant.url, token=tenant.token(), tmp=tmp_path)

    assert ran.returncode == 1, ran
    status, detail = ran.steps["save"]
    assert status == "FAIL" and "unavailable" in detail
    assert [ran.steps[s][0] for s in STEPS[1:]] == ["SKIP"] * (len(STEPS) - 1)
    assert ran.stdout.splitlines()[-1].startswith("0 passed, 1 failed")


def test_a_tenant_that_declares_no_collection_says_why_the_schema_steps_do_not_apply(
    tenant: Tenant,
) -> None:
    tenant.declare([])

    ran = dogfood("--mcp-url", tenant.url, env_token=tenant.token())

    assert ran.returncode == 0, ran
    assert statuses(ran) == {**dict.fromkeys(STEPS, "PASS"), "older-schema": "N/A", "canary": "N/A"}
    assert "declares no collection with a JSON Schema" in ran.steps["older-schema"][1]


def test_a_tenant_whose_object_limit_is_above_the_one_assumed_fails_the_quota_step(
    tenant: Tenant, tmp_path: Path
) -> None:
    ran = dogfood("--mcp-url", tenant.url, "--max-object-bytes", "1Ki",
                  token=tenant.token(), tmp=tmp_path)  # fmt: skip

    assert ran.returncode == 1, ran
    status, detail = ran.steps["quota"]
    assert status == "FAIL"
    assert "1038-byte object was accepted" in detail and "--max-object-bytes" in detail


@pytest.mark.parametrize(
    ("kind", "said"),
    [
        ("garbage", "the token was not accepted (HTTP 401 invalid_token"),
        ("other audience", "the token was not accepted (HTTP 401 invalid_token"),
        ("read only", "needs the stowage:write scope"),
    ],
)
def test_a_token_the_gateway_refuses_stops_the_check_with_exit_2_and_says_why(
    tenant: Tenant, tmp_path: Path, kind: str, said: str
) -> None:
    token = {
        "garbage": "not-a-token",
        "other audience": tenant.issuer.token(tenant.url + "-elsewhere", subject=TEST_USER),
        "read only": tenant.token(scopes=("stowage:read",)),
    }[kind]

    ran = dogfood("--mcp-url", tenant.url, token=token, tmp=tmp_path)

    assert ran.returncode == 2, ran
    assert said in ran.stderr
    assert token not in ran.stdout + ran.stderr


def test_no_token_is_a_usage_error() -> None:
    ran = dogfood("--mcp-url", "http://127.0.0.1:9/t/x/mcp")

    assert ran.returncode == 2
    assert "--token-file PATH or $STOWAGE_DOGFOOD_TOKEN" in ran.stderr
