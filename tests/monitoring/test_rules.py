"""The alert rules: valid for promtool, unit-tested, with their labels, annotations, runbooks."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from stowage_testing.tools import find_program, missing

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "charts/stowage/files/prometheus/rules.yaml"
UNIT_TESTS = sorted(Path(__file__).parent.glob("*_test.yaml"))
RUNBOOKS = REPO / "docs/runbooks"
RUNBOOK_URL = "https://github.com/stowage-dev/stowage/blob/main/docs/runbooks/{}.md"


def promtool() -> Path:
    found = find_program("promtool")
    if found is None:
        missing("promtool", "install Debian's prometheus package (apt-get install prometheus)")
    assert found is not None
    return found


def alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def alert_names() -> list[str]:
    return [rule["alert"] for rule in alerts()]


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(promtool()), *map(str, args)], capture_output=True, text=True, timeout=120
    )


def test_rule_file_passes_promtool_check_rules() -> None:
    done = run("check", "rules", RULES)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_unit_test_passes_promtool_test_rules() -> None:
    assert UNIT_TESTS, "no promtool unit tests under tests/monitoring"
    done = run("test", "rules", *UNIT_TESTS)
    assert done.returncode == 0, done.stdout + done.stderr


def _tested_alerts() -> dict[str, set[str]]:
    """For each alert, whether some unit test expects it to fire and some expects silence."""
    seen: dict[str, set[str]] = {}
    for path in UNIT_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test") or []:
                kind = "fires" if check.get("exp_alerts") else "quiet"
                seen.setdefault(check["alertname"], set()).add(kind)
    return seen


@pytest.mark.parametrize("alert", alert_names())
def test_alert_has_unit_tests_where_it_fires_and_where_it_stays_quiet(alert: str) -> None:
    assert _tested_alerts().get(alert) == {"fires", "quiet"}


def test_unit_tests_name_only_alerts_that_exist() -> None:
    assert set(_tested_alerts()) <= set(alert_names())


@pytest.mark.parametrize("alert", alert_names())
def test_alert_has_severity_a_summary_naming_the_tenant_and_a_runbook(alert: str) -> None:
    rule = next(r for r in alerts() if r["alert"] == alert)
    assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    annotations = rule["annotations"]
    assert "{{ $labels.tenant }}" in annotations["summary"]
    assert annotations["description"].strip()
    assert annotations["runbook_url"] == RUNBOOK_URL.format(alert)
    runbook = RUNBOOKS / f"{alert}.md"
    assert runbook.is_file(), f"{runbook.relative_to(REPO)} is missing"
    text = runbook.read_text()
    assert text.startswith(f"# {alert}\n")
    for heading in ("## What it means", "## How to confirm", "## What to do"):
        assert heading in text, f"{runbook.name} lacks {heading!r}"


def test_every_runbook_belongs_to_an_alert() -> None:
    assert {p.stem for p in RUNBOOKS.glob("*.md")} == set(alert_names())


def test_alerts_cover_what_a_platform_team_must_act_on() -> None:
    exprs = " ".join(rule["expr"] for rule in alerts())
    for needed in (
        "stowage:tool_call_errors:ratio_rate5m",  # burn rate, fast window
        "stowage:tool_call_errors:ratio_rate6h",  # burn rate, slow window
        "stowage:tool_call_seconds:p99_rate5m",
        "stowage:rate_limited:ratio_rate10m",
        "stowage_operator_tenant_ready",
        "stowage_worker_database_up",
        "stowage_operator_errors_total",
        "stowage_worker_quota_used_ratio",
        "stowage_worker_purge_last_success_timestamp_seconds",
        "stowage_worker_expired_objects",
        "stowage_backup_last_success_timestamp_seconds",
        "stowage_backup_scheduled_since_timestamp_seconds",
        "stowage_backup_last_drill_success",
        "stowage_backup_last_drill_timestamp_seconds",
    ):
        assert re.search(re.escape(needed), exprs), needed
