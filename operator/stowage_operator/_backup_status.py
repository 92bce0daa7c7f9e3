"""What the backup and drill Jobs ended with, as the Tenant's ``status.backup``. No I/O here.

Each run of the two CronJobs writes its outcome, one JSON line, to
``/dev/termination-log``; the kubelet copies it into the pod's
``state.terminated.message``. A Job whose pod left no such line (killed at its
deadline, out of memory, evicted) still has the Job controller's ``Failed``
condition, whose reason and message are used instead. Success or failure is
always the Job's: its result line only adds what the run knows (which backup,
its size, why a drill failed).

The Jobs the CronJobs keep (three of each outcome) are the evidence;
``fold`` merges it into the previous ``status.backup``, so what a Job that
is gone proved is kept, and an older Job never replaces a newer result.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stowage_operator._backups import TASK_LABEL
from stowage_operator._types import BackupFacts, Body

SUCCEEDED, FAILED = "Succeeded", "Failed"
#: Room for a reason's explanation in the status, not for a whole log.
MESSAGE_LIMIT = 1000


@dataclass(frozen=True)
class Run:
    """One finished Job of a Tenant's backup or drill CronJob."""

    task: str
    job: str
    finished: datetime
    succeeded: bool
    reason: str
    message: str
    #: The run's JSON result line, or empty when its pod left none.
    result: Mapping[str, Any]


def _time(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(job: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for c in (job.get("status") or {}).get("conditions") or ():
        if c.get("type") == kind and c.get("status") == "True":
            found: Mapping[str, Any] = c
            return found
    return None


def _result_line(message: object) -> Mapping[str, Any]:
    """The JSON result in a termination message (with FallbackToLogsOnError: the last line)."""
    if not isinstance(message, str):
        return {}
    for line in reversed(message.strip().splitlines()):
        if line.startswith("{"):
            try:
                parsed = json.loads(line)
            except ValueError:
                return {}
            return parsed if isinstance(parsed, dict) and "result" in parsed else {}
    return {}


def _terminated(pods: Iterable[Body], task: str) -> Mapping[str, Any]:
    """The ``state.terminated`` of the task's container in the newest pod that has one."""
    newest: tuple[datetime, Mapping[str, Any]] | None = None
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or ():
            terminated = (status.get("state") or {}).get("terminated")
            if status.get("name") != task or not terminated:
                continue
            at = _time(terminated.get("finishedAt")) or datetime.min.replace(tzinfo=UTC)
            if newest is None or at > newest[0]:
                newest = (at, terminated)
    return newest[1] if newest else {}


def _owner_uid(pod: Mapping[str, Any]) -> str:
    for owner in (pod.get("metadata") or {}).get("ownerReferences") or ():
        if owner.get("kind") == "Job" and owner.get("controller"):
            return str(owner.get("uid", ""))
    return ""


def _run(job: Body, pods: Sequence[Body]) -> Run | None:
    """The Job's outcome, or None while it has none (running, or not started)."""
    meta = job.get("metadata") or {}
    task = str((meta.get("labels") or {}).get(TASK_LABEL, ""))
    complete, failed = _condition(job, "Complete"), _condition(job, "Failed")
    done = complete or failed
    if task not in {"backup", "drill"} or done is None:
        return None
    terminated = _terminated(pods, task)
    result = _result_line(terminated.get("message"))
    finished = (
        _time((job.get("status") or {}).get("completionTime"))
        or _time(done.get("lastTransitionTime"))
        or _time(terminated.get("finishedAt"))
    )
    if finished is None:
        return None
    if complete is not None:
        reason, message = "", str(result.get("message") or "")
    elif result.get("result") == FAILED:
        reason, message = str(result.get("reason") or "Failed"), str(result.get("message") or "")
    else:
        # No result line: the Job controller's word (DeadlineExceeded, BackoffLimitExceeded),
        # with the container's (OOMKilled, Error) and its last log lines when there are any.
        reason = str(done.get("reason") or terminated.get("reason") or "Failed")
        parts = [str(done.get("message") or ""), str(terminated.get("reason") or "")]
        tail = str(terminated.get("message") or "").strip()
        if tail:
            parts.append(f"last output: {tail}")
        message = "; ".join(p for p in parts if p)
    return Run(
        task=task,
        job=str(meta.get("name", "")),
        finished=finished,
        succeeded=complete is not None,
        reason=reason,
        message=message[:MESSAGE_LIMIT],
        result=result,
    )


def finished_runs(jobs: Iterable[Body], pods: Iterable[Body]) -> list[Run]:
    """The finished Jobs of the two CronJobs, oldest first, each with its pods' result."""
    by_job: dict[str, list[Body]] = {}
    for pod in pods:
        by_job.setdefault(_owner_uid(pod), []).append(pod)
    runs = []
    for job in jobs:
        uid = str((job.get("metadata") or {}).get("uid", ""))
        run = _run(job, by_job.get(uid, []) if uid else [])
        if run is not None:
            runs.append(run)
    return sorted(runs, key=lambda r: r.finished)


def _backup_fields(run: Run, taken: datetime) -> dict[str, Any]:
    fields: dict[str, Any] = {"lastSuccessTime": _stamp(taken)}
    if run.result.get("backup"):
        fields["lastBackup"] = str(run.result["backup"])
    if isinstance(run.result.get("sizeBytes"), int):
        fields["sizeBytes"] = run.result["sizeBytes"]
    return fields


def _drill_fields(run: Run) -> dict[str, Any]:
    backup = str(run.result.get("backup") or "")
    if run.succeeded:
        reason = "Verified"
        message = (
            f"backup {backup or '(unnamed)'} restored into the scratch database and matched its "
            "manifest (sha256, schema revision, row count per table)"
        )
    else:
        reason, message = run.reason, run.message
    drill: dict[str, Any] = {
        "time": _stamp(run.finished),
        "result": SUCCEEDED if run.succeeded else FAILED,
        "reason": reason,
        "message": message,
        "job": run.job,
        # Written even when unknown: status is merge-patched, and a null removes
        # the previous drill's backup name instead of leaving it beside this one.
        "backup": backup or None,
    }
    return drill


def fold(previous: Mapping[str, Any], runs: Iterable[Run]) -> dict[str, Any]:
    """``previous`` (the last ``status.backup``) updated by the newer of ``runs``."""
    status: dict[str, Any] = {k: v for k, v in previous.items() if v is not None}
    for run in runs:  # oldest first: the newest result wins
        if run.task == "backup" and run.succeeded:
            # A backup is as recent as its snapshot, not as its Job's end.
            taken = _time(run.result.get("backupTime")) or run.finished
            known = _time(status.get("lastSuccessTime"))
            if known is None or taken >= known:
                status.pop("lastBackup", None)
                status.pop("sizeBytes", None)
                status.update(_backup_fields(run, taken))
        elif run.task == "drill":
            known = _time((status.get("lastDrill") or {}).get("time"))
            if known is None or run.finished >= known:
                status["lastDrill"] = _drill_fields(run)
    return status


def facts(backup: Mapping[str, Any], scheduled_since: str | None) -> BackupFacts:
    """The numbers to export from a ``status.backup`` and the BackupScheduled transition time."""
    success = _time(backup.get("lastSuccessTime"))
    drill: Mapping[str, Any] = backup.get("lastDrill") or {}
    drilled = _time(drill.get("time"))
    size = backup.get("sizeBytes")
    since = _time(scheduled_since)
    return BackupFacts(
        last_success=success.timestamp() if success else None,
        size_bytes=float(size) if isinstance(size, int) and success else None,
        last_drill=drilled.timestamp() if drilled else None,
        last_drill_succeeded=drill.get("result") == SUCCEEDED if drilled else None,
        scheduled_since=since.timestamp() if since else None,
    )
