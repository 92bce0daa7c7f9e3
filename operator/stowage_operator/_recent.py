"""What a reconcile may reuse: a read's answer, kept for one freshness window.

A thousand Tenants' resync passes read the same Region, admin Secret and
region catalog; ``RecentReads`` lets them share one read per window. Other
triggers share reads too, over a much shorter window (``SHARED_SECONDS``):
a burst of a hundred new Tenants reads its Region and admin Secret a few
times, not a hundred times each, and a Region or Secret changed before a
Tenant is created is still what its reconcile sees, a second later at most.
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

#: The longest a trigger other than the resync reuses a read (one another reconcile made).
SHARED_SECONDS = 1.0

_Key = tuple[str, ...]
#: When a read started, and its answer or the operator's error it raised.
_Kept = tuple[float, Any]


class RecentReads:
    """Answers (or errors) of keyed reads, with when they were read; reads under way."""

    def __init__(self, fresh_seconds: float) -> None:
        self._fresh_seconds = fresh_seconds
        self._recently_read: dict[_Key, _Kept] = {}
        self._reading: dict[_Key, asyncio.Task[_Kept]] = {}

    def window(self, trigger: Trigger | None) -> float:
        """How old a read ``trigger`` reuses may be, in seconds."""
        if trigger is Trigger.RESYNC:
            return self._fresh_seconds
        return min(SHARED_SECONDS, self._fresh_seconds)

    async def get(
        self, key: _Key, read: Callable[[], Awaitable[_T]], trigger: Trigger | None
    ) -> _T:
        """What ``read`` answered less than a window ago (``window``); else read now.

        A read of the same key under way is joined, not repeated: its callers all get
        its answer, so a thousand Tenants' passes, or a burst of new Tenants, share one
        read. A read that failed fails every caller in its window the same way (so a
        region that is down is tried once per window, not once per Tenant).
        """
        asked = time.monotonic()
        kept = self._recently_read.get(key)
        if kept is None or asked - kept[0] >= self.window(trigger):
            reading = self._reading.get(key)
            if reading is None:
                reading = asyncio.create_task(self._read_now(key, read))
                self._reading[key] = reading
            # A caller that gives up (cancelled) leaves the read to the others.
            kept = await asyncio.shield(reading)
        answer = kept[1]
        if isinstance(answer, OperatorError):
            # A copy: re-raising one instance would grow its traceback with every caller.
            raise copy.copy(answer).with_traceback(None)
        value: _T = answer
        return value

    async def _read_now(self, key: _Key, read: Callable[[], Awaitable[Any]]) -> _Kept:
        started = time.monotonic()
        try:
            answer = await read()
        except OperatorError as e:
            answer = e
        finally:
            del self._reading[key]
        kept = (started, answer)
        self._recently_read[key] = kept
        return kept


__all__ = ["SHARED_SECONDS", "RecentReads"]
