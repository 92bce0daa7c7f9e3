"""The gauges alerts rely on: quota usage against the limits, and the retention-purge backlog."""

from __future__ import annotations

import copy
import time
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from stowage_testing.tools import eventually
from stowage_testing.worker import WorkerProcess, running_worker
from tests.tenant_worker.conftest import POLICY, database, open_client


def gauges(worker: WorkerProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample the worker's /metrics serves, keyed by name and sorted labels."""
    url = f"http://127.0.0.1:{worker.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def quota(worker: WorkerProcess, name: str, limit: str) -> float | None:
    return gauges(worker).get((name, (("limit", limit),)))


def plain(worker: WorkerProcess, name: str) -> float | None:
    return gauges(worker).get((name, ()))


def stored_totals(w: WorkerProcess) -> tuple[int, int]:
    with database(w).connect() as conn:
        objects, size = conn.execute(
            sa.text("SELECT count(*), coalesce(sum(size_bytes), 0) FROM objects")
        ).one()
    return int(objects), int(size)


def test_quota_gauges_report_what_the_tenant_stores_against_its_limits(
    new_database_url: Callable[[], str], tmp_path: Path
) -> None:
    policy = copy.deepcopy(POLICY)
    policy["quotas"] = {"maxObjects": 10, "maxBytes": "1Ki", "maxObjectBytes": "512"}
    with ExitStack() as stack:
        w = stack.enter_context(running_worker(new_database_url(), tmp_path / "w", policy))
        w.stop()
        w.purge_interval = 0.2
        w.start()
        client = open_client(w, stack)
        for i in range(4):
            client.put("items", f"o{i}", {"i": i, "pad": "x" * 40})
        objects, size = stored_totals(w)
        assert objects == 4 and size > 0

        name = "stowage_worker_quota_used"
        eventually(lambda: quota(w, name, "objects") == 4, timeout=15, what="objects used")
        assert quota(w, name, "bytes") == size
        assert quota(w, "stowage_worker_quota_limit", "objects") == 10
        assert quota(w, "stowage_worker_quota_limit", "bytes") == 1024
        assert quota(w, "stowage_worker_quota_used_ratio", "objects") == 0.4
        assert quota(w, "stowage_worker_quota_used_ratio", "bytes") == size / 1024

        # A lowered quota shows at once: the policy reload measures again.
        policy["quotas"]["maxObjects"] = 5
        w.write_policy(policy)
        eventually(
            lambda: quota(w, "stowage_worker_quota_limit", "objects") == 5,
            timeout=15,
            what="the new limit",
        )
        assert quota(w, "stowage_worker_quota_used_ratio", "objects") == 0.8


def _expire(w: WorkerProcess, prefix: str) -> None:
    with database(w).begin() as conn:
        conn.execute(
            sa.text("UPDATE objects SET expires_at = :t WHERE object_id LIKE :p"),
            {"t": datetime.now(UTC) - timedelta(minutes=1), "p": f"{prefix}%"},
        )


def test_purge_gauges_show_the_expired_backlog_and_when_a_purge_last_completed(
    new_database_url: Callable[[], str], tmp_path: Path
) -> None:
    with ExitStack() as stack:
        # The standard purge interval in tests is an hour: no purge runs here yet.
        w = stack.enter_context(running_worker(new_database_url(), tmp_path / "w", POLICY))
        client = open_client(w, stack)
        for i in range(3):
            client.put("items", f"e{i}", {"i": i}, ttl_seconds=30)
        client.put("cache", "old", {"v": 1})
        client.put("items", "live", {"v": 1})
        _expire(w, "e")
        with database(w).begin() as conn:
            conn.execute(
                sa.text("UPDATE objects SET updated_at = :t WHERE object_id = 'old'"),
                {"t": datetime.now(UTC) - timedelta(days=2)},
            )

        # A restarted worker measures at start: 4 expired (3 by TTL, 1 by the
        # cache collection's retention), none purged, no purge completed yet.
        w.stop()
        w.start()
        assert plain(w, "stowage_worker_expired_objects") == 4
        assert plain(w, "stowage_worker_purge_last_success_timestamp_seconds") == 0
        assert quota(w, "stowage_worker_quota_used", "objects") == 5

        # With purges running, the backlog drains and the pass is stamped.
        w.stop()
        w.purge_interval = 0.2
        started = time.time()
        w.start()
        eventually(
            lambda: (
                (plain(w, "stowage_worker_purge_last_success_timestamp_seconds") or 0) >= started
            ),
            timeout=15,
            what="a completed purge pass",
        )
        eventually(
            lambda: plain(w, "stowage_worker_expired_objects") == 0,
            timeout=15,
            what="the backlog measured empty",
        )
        assert stored_totals(w)[0] == 1
        assert quota(w, "stowage_worker_quota_used", "objects") == 1
        assert (plain(w, "stowage_worker_purge_last_success_timestamp_seconds") or 0) <= time.time()
