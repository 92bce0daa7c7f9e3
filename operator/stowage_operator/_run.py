"""Entry point: run kopf with our registry and settings until the stop flag is set."""

from __future__ import annotations

from typing import Any

import kopf

from stowage_operator._handlers import build_registry, kopf_settings
from stowage_operator._settings import OperatorSettings


async def run_operator(
    settings: OperatorSettings, *, stop_flag: Any = None, ready_flag: Any = None
) -> None:
    """Run until ``stop_flag`` (an asyncio/threading Event or a Future) is set."""
    await kopf.operator(
        registry=build_registry(settings),
        settings=kopf_settings(settings),
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        standalone=True,
        liveness_endpoint=settings.liveness_endpoint,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
        memo=kopf.Memo(),
    )
