"""Build Stowage's Grafana dashboard with grafana-foundation-sdk and write it as JSON.

    make dashboards        # or: .venv/bin/python hack/dashboards/stowage.py

writes charts/stowage/files/dashboards/stowage.json, which the chart ships in a
ConfigMap for the Grafana sidecar. Never edit the JSON by hand: change this
file and regenerate; tests/monitoring/test_dashboard.py fails while they differ.

Queries filter on the `tenant` variable (multi-value, "All" = `.*`) and use the
`datasource` variable, so one import works against any Prometheus data source.
Worker series carry `tenant`/`namespace` from the PodMonitor relabelling.

From metrics to traces: the latency panel asks for exemplars (the gateway's
histograms carry the trace id of a traced call, on the OpenMetrics exposition),
and its "Open trace" link opens an exemplar's ``trace_id`` in Explore on the
`traces` variable's data source (Jaeger). Grafana's own exemplar button also
appears once the Prometheus data source maps ``trace_id`` to that data source
(``exemplarTraceIdDestinations``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.builders.common import VizLegendOptions
from grafana_foundation_sdk.builders.dashboard import (
    Dashboard,
    DashboardLink,
    DatasourceVariable,
    QueryVariable,
    Row,
    ThresholdsConfig,
)
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import LegendDisplayMode, LegendPlacement
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    Panel,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
    VariableRefresh,
    VariableSort,
)

OUTPUT = Path(__file__).resolve().parents[2] / "charts/stowage/files/dashboards/stowage.json"
UID = "stowage-overview"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
T = 'tenant=~"$tenant"'
#: An exemplar's trace, opened in Explore on the trace backend the `traces` variable names.
TRACE_LINK = (
    '/explore?left={"datasource":"${traces}","queries":[{"refId":"A",'
    '"query":"${__data.fields.trace_id}"}]}'
)
CALLS = "stowage_gateway_tool_calls_total"


def rate(metric: str, by: str, matchers: str = "") -> str:
    """``sum by (by) (rate(metric{tenant=~"$tenant",matchers}[$__rate_interval]))``."""
    selector = f"{metric}{{{T}{',' + matchers if matchers else ''}}}"
    return f"sum by ({by}) (rate({selector}[$__rate_interval]))"


def query(expr: str, legend: str) -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).datasource(DATASOURCE)


def graph(
    title: str, description: str, unit: str, *queries: prometheus.Dataquery
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .height(8)
        .span(12)
        .fill_opacity(10)
        .legend(
            VizLegendOptions()
            .display_mode(LegendDisplayMode.TABLE)
            .placement(LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["mean", "max"])
        )
    )
    for ref, q in zip("ABCDEFGH", queries, strict=False):
        panel = panel.with_target(q.ref_id(ref))
    return panel


def thresholds(*steps: tuple[float | None, str]) -> ThresholdsConfig:
    return (
        ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=v, color=c) for v, c in steps])
    )


def row(d: Dashboard, title: str, *panels: Builder[Panel]) -> Dashboard:
    """``d`` with a row named ``title`` and ``panels`` in it, in order."""
    d = d.with_row(Row(title))
    for panel in panels:
        d = d.with_panel(panel)
    return d


def tool_call_panels() -> tuple[Builder[Panel], ...]:
    """Calls, errors and latency by tool, as the gateway counts them."""
    return (
        graph(
            "Tool calls/s by tool",
            "Tool calls the gateway answered, per second, by tool.",
            "reqps",
            query(rate(CALLS, "tool"), "{{tool}}"),
        ),
        graph(
            "Error ratio by tool and outcome",
            "Share of each tool's calls that did not end ok, by outcome. internal and "
            "unavailable are the platform's failures (the 99.5 % objective); not_found, "
            "conflict, invalid_argument and quota_exceeded are answers to the caller.",
            "percentunit",
            query(
                rate(CALLS, "tool, outcome", 'outcome!="ok"')
                + " / ignoring (outcome) group_left "
                + rate(CALLS, "tool"),
                "{{tool}} {{outcome}}",
            ),
        ),
        graph(
            "Latency p50 / p99 by tool",
            "Tool-call latency inside the gateway, worker call included. The dots are "
            "exemplars: one traced call each; open its trace from the point's link.",
            "s",
            query(
                "histogram_quantile(0.5, sum by (tool, le) "
                f"(rate(stowage_gateway_tool_call_seconds_bucket{{{T}}}[$__rate_interval])))",
                "p50 {{tool}}",
            ).exemplar(True),
            query(
                "histogram_quantile(0.99, sum by (tool, le) "
                f"(rate(stowage_gateway_tool_call_seconds_bucket{{{T}}}[$__rate_interval])))",
                "p99 {{tool}}",
            ).exemplar(True),
        ).data_links([DashboardLink("Open trace").url(TRACE_LINK).target_blank(True)]),
    )


def objective_and_refusal_panels() -> tuple[Builder[Panel], ...]:
    """The error objective, and the calls the gateway refused before forwarding them."""
    return (
        graph(
            "Platform error ratio (5m) against the objective",
            "Share of calls failing on the platform's side (internal, unavailable), per "
            "tenant; the objective allows 0.5 %. StowageToolCallErrorBudget* alerts page "
            "on 14.4x and warn on 6x of it.",
            "percentunit",
            query(f"stowage:tool_call_errors:ratio_rate5m{{{T}}}", "{{tenant}}"),
        ).thresholds(thresholds((None, "green"), (0.005, "orange"), (0.072, "red"))),
        graph(
            "Rate-limit rejections/s",
            "Tool calls answered 429, by tenant and the bucket that refused them "
            "(user: one user's limit; tenant: the whole tenant's).",
            "reqps",
            query(
                rate("stowage_gateway_rate_limited_total", "tenant, bucket"),
                "{{tenant}} {{bucket}}",
            ),
        ),
        graph(
            "Auth failures/s",
            "Requests refused with 401/403, by reason (missing, expired, audience, scope, ...).",
            "reqps",
            query(
                rate("stowage_gateway_auth_failures_total", "tenant, reason"),
                "{{tenant}} {{reason}}",
            ),
        ),
    )


def worker_rpc_panels() -> tuple[Builder[Panel], ...]:
    """What the workers answered, and how fast."""
    return (
        graph(
            "Worker RPC latency p99 by method",
            "gRPC handling time in the tenant workers, by method.",
            "s",
            query(
                "histogram_quantile(0.99, sum by (method, le) "
                f"(rate(stowage_worker_rpc_duration_seconds_bucket{{{T}}}[$__rate_interval])))",
                "{{method}}",
            ),
        ),
        graph(
            "Worker RPCs/s by status code",
            "What the workers answered, by method and gRPC status code.",
            "reqps",
            query(
                rate("stowage_worker_rpcs_total", "method, code"),
                "{{method}} {{code}}",
            ),
        ),
    )


def database_and_quota_panels() -> tuple[Builder[Panel], ...]:
    """Whether each tenant's database answers, and how full its quotas are."""
    return (
        stat.Panel()
        .title("Database up")
        .description("1 when every worker of the tenant passes its database check.")
        .datasource(DATASOURCE)
        .height(8)
        .span(6)
        .thresholds(thresholds((None, "red"), (1, "green")))
        .with_target(
            query(
                f"min by (namespace, tenant) (stowage_worker_database_up{{{T}}})",
                "{{namespace}}/{{tenant}}",
            ).ref_id("A")
        ),
        graph(
            "Quota usage",
            "Stored objects and bytes over quotas.maxObjects and quotas.maxBytes; "
            "StowageTenantQuotaNearlyFull warns above 90 %.",
            "percentunit",
            query(
                f"max by (namespace, tenant, limit) (stowage_worker_quota_used_ratio{{{T}}})",
                "{{tenant}} {{limit}}",
            ),
        )
        .span(6)
        .thresholds(thresholds((None, "green"), (0.9, "orange"), (1, "red"))),
    )


def restart_panels() -> tuple[Builder[Panel], ...]:
    """The workers' restarts, and those after an OOM kill (from the operator's pod watch)."""
    return (
        graph(
            "Worker restarts",
            "Restarts of each tenant's worker containers in the last 15 minutes, and how many "
            "last ended OOMKilled; StowageTenantWorkerOOMKilled warns when both are above 0.",
            "short",
            query(
                f"max by (namespace, tenant) "
                f"(increase(stowage_tenant_worker_restarts{{{T}}}[15m]))",
                "restarts {{namespace}}/{{tenant}}",
            ),
            query(
                f"max by (namespace, tenant) "
                f'(stowage_tenant_worker_last_terminated{{{T},reason="OOMKilled"}})',
                "last exit OOMKilled {{namespace}}/{{tenant}}",
            ),
        ),
    )


def retention_panels() -> tuple[Builder[Panel], ...]:
    """The retention purges: what they remove and whether they keep up."""
    return (
        graph(
            "Retention purges",
            "Expired objects purged per second, and expired objects still stored after "
            "the last purge pass.",
            "short",
            query(
                rate("stowage_worker_purged_objects_total", "tenant"),
                "purged/s {{tenant}}",
            ),
            query(
                f"max by (tenant) (stowage_worker_expired_objects{{{T}}})",
                "expired backlog {{tenant}}",
            ),
        ),
        graph(
            "Time since the last completed purge",
            "StowageRetentionPurgeBehind warns when no purge pass completed for an hour.",
            "s",
            query(
                "time() - max by (tenant) "
                f"(stowage_worker_purge_last_success_timestamp_seconds{{{T}}} > 0)",
                "{{tenant}}",
            ),
        ),
    )


def operator_panels() -> tuple[Builder[Panel], ...]:
    """The operator's reconciliations and the Tenants' Ready condition."""
    return (
        graph(
            "Reconciliations/s by outcome",
            "Tenant reconciliations of the operator (all tenants), by trigger and outcome.",
            "ops",
            query(
                "sum by (trigger, outcome) "
                "(rate(stowage_operator_reconciliations_total[$__rate_interval]))",
                "{{trigger}} {{outcome}}",
            ),
        ),
        graph(
            "Reconcile errors/s by reason",
            "Failed reconciliations of the selected tenants, by the condition's reason.",
            "ops",
            query(
                "sum by (namespace, tenant, reason) "
                f"(rate(stowage_operator_errors_total{{{T}}}[$__rate_interval]))",
                "{{namespace}}/{{tenant}} {{reason}}",
            ),
        ),
        graph(
            "Tenants Ready",
            "1 when the Tenant's Ready condition is True.",
            "short",
            query(
                f"max by (namespace, tenant) (stowage_operator_tenant_ready{{{T}}})",
                "{{namespace}}/{{tenant}}",
            ),
        ),
    )


def backup_age_panel() -> Builder[Panel]:
    return (
        graph(
            "Time since the last successful backup",
            "Age of each tenant's newest successful backup (its snapshot time). "
            "StowageBackupStale warns past 26 h; backups run daily by default.",
            "s",
            query(
                "time() - max by (namespace, tenant) "
                f"(stowage_backup_last_success_timestamp_seconds{{{T}}})",
                "{{namespace}}/{{tenant}}",
            ),
        )
        .span(10)
        .thresholds(thresholds((None, "green"), (26 * 3600, "red")))
    )


def drill_panels() -> tuple[Builder[Panel], ...]:
    """The restore drills: whether the newest passed, and how long ago it ran."""
    passed = {
        "0": ValueMappingResult(text="Failed", color="red", index=0),
        "1": ValueMappingResult(text="Passed", color="green", index=1),
    }
    return (
        stat.Panel()
        .title("Last restore drill")
        .description(
            "Whether each tenant's newest restore drill passed (the newest backup "
            "restored into a scratch database and matched its manifest). "
            "StowageBackupDrillFailed warns on Failed; status.backup.lastDrill says why."
        )
        .datasource(DATASOURCE)
        .height(8)
        .span(6)
        .thresholds(thresholds((None, "red"), (1, "green")))
        .mappings([ValueMap(options=passed)])
        .with_target(
            query(
                f"max by (namespace, tenant) (stowage_backup_last_drill_success{{{T}}})",
                "{{namespace}}/{{tenant}}",
            ).ref_id("A")
        ),
        graph(
            "Time since the last restore drill",
            "Age of each tenant's newest finished drill, passed or failed. "
            "StowageBackupDrillStale warns past 8 days.",
            "s",
            query(
                "time() - max by (namespace, tenant) "
                f"(stowage_backup_last_drill_timestamp_seconds{{{T}}})",
                "{{namespace}}/{{tenant}}",
            ),
        )
        .span(8)
        .thresholds(thresholds((None, "green"), (8 * 86400, "red"))),
    )


def backup_size_panel() -> Builder[Panel]:
    return graph(
        "Backup size",
        "Size of each tenant's newest successful backup archive (pg_dump custom "
        "format, compressed).",
        "bytes",
        query(
            f"max by (namespace, tenant) (stowage_backup_size_bytes{{{T}}})",
            "{{namespace}}/{{tenant}}",
        ),
    )


def rows(d: Dashboard) -> Dashboard:
    """``d`` with its rows of panels, top to bottom."""
    d = row(d, "Tool calls (gateway)", *tool_call_panels(), *objective_and_refusal_panels())
    d = row(
        d,
        "Tenant workers",
        *worker_rpc_panels(),
        *database_and_quota_panels(),
        *restart_panels(),
        *retention_panels(),
    )
    d = row(d, "Operator", *operator_panels())
    # From the operator, which reads each Tenant's finished backup and drill Jobs.
    return row(d, "Backups", backup_age_panel(), *drill_panels(), backup_size_panel())


def build() -> Dashboard:
    d = (
        Dashboard("Stowage")
        .uid(UID)
        .description(
            "Tool calls, tenant workers, the operator and the backups of a Stowage installation."
        )
        .tags(["stowage"])
        .refresh("30s")
        .time("now-3h", "now")
        .timezone("browser")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .with_variable(DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_variable(DatasourceVariable("traces").label("Traces").type("jaeger"))
        .with_variable(
            QueryVariable("tenant")
            .label("Tenant")
            .datasource(DATASOURCE)
            .query("label_values(stowage_gateway_tool_calls_total, tenant)")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )
    )
    return rows(d)


def render() -> str:
    """The dashboard as the JSON file holds it: sorted keys, stable ids, a final newline."""
    model = json.loads(json.dumps(build().build(), cls=JSONEncoder))
    for panel_id, panel in enumerate(model["panels"], start=1):
        panel["id"] = panel_id
    return json.dumps(model, indent=2, sort_keys=True) + "\n"


def main() -> int:
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(render())
    print(
        f"wrote {OUTPUT.relative_to(Path.cwd()) if OUTPUT.is_relative_to(Path.cwd()) else OUTPUT}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
