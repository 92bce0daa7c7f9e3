"""The tracing rows: the platform with tracing off, at 1 % and at 100 % of calls sampled.

Each setting gets its own worker (on the bench's database) and gateway, started
with the standard ``OTEL_*`` variables, the way the chart's ``tracing.*`` values
set them; the spans go to a real Jaeger (``stowage_testing.traces``) that the
bench starts, whose CPU is its own column. The settings alternate, ``repeats``
times, so drift on a shared machine does not favour one of them.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench._stack import COLLECTIONS, OPEN_LIMITS, TENANT, Stack
from stowage_testing.gateway import WORKER_POLICY, GatewayProcess, running_gateway, tenant_entry
from stowage_testing.traces import Jaeger, running_jaeger
from stowage_testing.worker import running_worker

#: A setting's name in ``--tracing`` → the sampler it stands for (None: tracing off).
SAMPLERS: dict[str, tuple[str, str] | None] = {
    "off": None,
    "1%": ("parentbased_traceidratio", "0.01"),
    "100%": ("parentbased_always_on", ""),
}


def environment(setting: str, jaeger: Jaeger) -> dict[str, str]:
    sampler = SAMPLERS[setting]
    if sampler is None:
        return {}
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": jaeger.otlp_endpoint, "OTEL_TRACES_SAMPLER": sampler[0]}
    if sampler[1]:
        env["OTEL_TRACES_SAMPLER_ARG"] = sampler[1]
    return env


def tracing_rounds(
    measure: Callable[..., Any],
    parts: Stack,
    work: Path,
    target: str,
    settings: list[str],
    concurrency: int,
    seconds: float,
    groups: dict[str, list[int]],
    repeats: int = 2,
) -> list[Any]:
    """save+get at ``concurrency`` for each setting, alternating ``repeats`` times."""
    database_url = parts.worker.database_url
    rounds = []
    with running_jaeger() as jaeger:
        assert jaeger.proc is not None
        for repeat in range(repeats):
            for setting in settings:
                env = environment(setting, jaeger)
                where = work / f"tracing-{repeat}-{setting.rstrip('%')}"
                with ExitStack() as stack:
                    policy = {**WORKER_POLICY, "collections": COLLECTIONS}
                    worker = stack.enter_context(
                        running_worker(database_url, where / "worker", policy, TENANT,
                                       migrate=False, env=env)
                    )  # fmt: skip
                    shell = GatewayProcess(workdir=where / "gw")
                    shell.workdir.mkdir(parents=True)
                    limits = {"rateLimits": OPEN_LIMITS, "collections": COLLECTIONS}
                    entry = tenant_entry(TENANT, shell, parts.issuer, worker.address, **limits)
                    shell.write_tenants([entry])
                    gateway = stack.enter_context(
                        running_gateway(shell.workdir, port=shell.port, env=env)
                    )
                    assert gateway.proc is not None and worker.proc is not None
                    token = parts.issuer.token(gateway.url(TENANT), subject="bench-user")
                    round_groups = {
                        **groups,
                        "gateway": [gateway.proc.pid],
                        "worker": [worker.proc.pid],
                        "jaeger": [jaeger.proc.pid],
                    }
                    name = f"{target}, tracing {setting}"
                    print(f"  {name}, {concurrency} connections, {seconds}s", flush=True)
                    rounds.append(
                        measure(name, gateway.url(TENANT), concurrency, seconds, round_groups,
                                token)
                    )  # fmt: skip
    return rounds
