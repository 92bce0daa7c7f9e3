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


def component_alerts() -> set[str]:
    """The alerts on a whole component (group ``stowage.components``): no tenant to name."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    named = {r["alert"] for g in groups if g["name"] == "stowage.components" for r in g["rules"]}
    return named - {"StowageWorkerScrapeFailing"}


@pytest.mark.parametrize("alert", alert_names())
def test_alert_has_severity_a_summary_naming_the_tenant_and_a_runbook(alert: str) -> None:
    rule = next(r for r in alerts() if r["alert"] == alert)
    assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    annotations = rule["annotations"]
    if alert not in component_alerts():
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
        "stowage_tenant_worker_restarts",
        "stowage_tenant_worker_last_terminated",
        "stowage:tool_call_errors:ratio_rate3d",  # burn rate, the slow tier
        'up{job="stowage-gateway"}',
        'up{job="stowage-operator"}',
        'up{job="stowage-workers"}',
    ):
        assert re.search(re.escape(needed), exprs), needed


#: Each burn-rate tier: its long window, short window, factor and calls-an-hour floor.
BURN_TIERS = {
    "StowageToolCallErrorBudgetFastBurn": ("1h", "5m", "14.4", "60"),
    "StowageToolCallErrorBudgetSlowBurn": ("6h", "30m", "6", "60"),
    "StowageToolCallErrorBudgetSteadyBurn": ("3d", "6h", "1", "6"),
}
WINDOW_WORDS = {
    "5m": "5 minutes",
    "30m": "30 minutes",
    "1h": "hour",
    "6h": "6 hours",
    "3d": "3 days",
}


@pytest.mark.parametrize("alert", sorted(BURN_TIERS))
def test_burn_rate_tiers_need_both_windows_and_traffic_and_say_which_window_is_printed(
    alert: str,
) -> None:
    long, short, _, floor = BURN_TIERS[alert]
    rule = next(r for r in alerts() if r["alert"] == alert)
    expr = rule["expr"]
    # The value an alert carries is its expression's first operand: the long window.
    assert expr.strip().startswith(f"stowage:tool_call_errors:ratio_rate{long} ")
    assert f"stowage:tool_call_errors:ratio_rate{short} " in expr
    assert f"stowage:tool_calls:rate{long} >= {floor} / 3600" in expr
    description = " ".join(rule["annotations"]["description"].split())
    printed = description.split("{{ $value | humanizePercentage }}", 1)[1]
    assert printed.index(f"over the last {WINDOW_WORDS[long]}") < printed.index(
        f"over the last {WINDOW_WORDS[short]}"
    ), description
