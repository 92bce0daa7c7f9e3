"""One skeleton for every mutation: run it, run it again after a lost race, replay a key.

A mutation is an ``attempt``: one transaction, or on PostgreSQL one statement,
that either writes or refuses. It may find that its idempotency key was used
before (``Replayed``: the first result is the answer), lose a race to a
concurrent write (``WriteRace``, raised by the database adapter: it simply
runs again, and then sees that write), or refuse with a conflict. A refusal
of a call with a key looks for the key once more, outside the attempt: a
concurrent call with the same key may have won, and its result is the answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tenant_worker._errors import Conflict, NotFound, StorageUnavailable, WriteRace
from tenant_worker.storage._store import KeyRef, Store

#: Attempts of a mutation that keeps losing races before the caller is told to retry.
ATTEMPTS = 4

T = TypeVar("T")


class Replayed(Exception):  # an outcome carried out of the attempt, not a failure
    """The call repeats its idempotency key's first request; ``first`` is that result."""

    def __init__(self, first: dict[str, Any]) -> None:
        super().__init__("idempotency key replayed")
        self.first = first


async def write_once(
    store: Store,
    ref: KeyRef | None,
    attempt: Callable[[], Awaitable[T]],
    replayed: Callable[[dict[str, Any]], T],
) -> T:
    """``attempt()`` until it does not lose a race; a repeated key gives its first result."""
    lost: WriteRace | None = None
    for _ in range(ATTEMPTS):
        try:
            return await attempt()
        except Replayed as r:
            return replayed(r.first)
        except WriteRace as e:
            lost = e
        except (Conflict, NotFound):
            first = await _replay(store, ref)
            if first is not None:
                return replayed(first)
            raise
    raise StorageUnavailable(
        "the write kept losing races with concurrent writes of the same object; retry it",
        store=None,
    ) from lost


async def _replay(store: Store, ref: KeyRef | None) -> dict[str, Any] | None:
    if ref is None:
        return None
    async with store.statements() as conn:
        return await store.replay(conn, ref)
