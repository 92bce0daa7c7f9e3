"""What a resync pass may reuse: a read's answer, kept for one freshness window.

A thousand Tenants' resync passes read the same Region, admin Secret and
region catalog; ``RecentReads`` lets them share one read per window. Other
triggers always read.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from stowage_operator._errors import OperatorError
from stowage_operator._types import Trigger

_T = TypeVar("_T")


class RecentReads:
    """Answers (or errors) of keyed reads, with when they were read."""

    def __init__(self, fresh_seconds: float) -> None:
        self._fresh_seconds = fresh_seconds
        self._recently_read: dict[tuple[str, ...], tuple[float, Any]] = {}
        self._read_locks: dict[tuple[str, ...], asyncio.Lock] = {}

    async def get(
        self, key: tuple[str, ...], read: Callable[[], Awaitable[_T]], trigger: Trigger | None
    ) -> _T:
        """On a resync, what ``read`` answered less than a freshness window ago; else read now.

        One caller reads while the others with the same key wait for its answer, so a
        thousand Tenants' passes share one read per window. A read that failed fails
        every resync in its window the same way (so a region that is down is tried
        once per window, not once per Tenant); other triggers always read.
        """
        if trigger is not Trigger.RESYNC:
            return await self._read_now(key, read)
        async with self._read_locks.setdefault(key, asyncio.Lock()):
            kept = self._recently_read.get(key)
            if kept is None or time.monotonic() - kept[0] >= self._fresh_seconds:
                return await self._read_now(key, read)
            if isinstance(kept[1], OperatorError):
                # A copy: re-raising one instance would grow its traceback with every caller.
                raise copy.copy(kept[1]).with_traceback(None)
            value: _T = kept[1]
            return value

    async def _read_now(self, key: tuple[str, ...], read: Callable[[], Awaitable[_T]]) -> _T:
        started = time.monotonic()
        try:
            value = await read()
        except OperatorError as e:
            self._recently_read[key] = (started, e)
            raise
        self._recently_read[key] = (started, value)
        return value


__all__ = ["RecentReads"]
