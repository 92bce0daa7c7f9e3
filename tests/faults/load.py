"""The load of the fault tier: client threads, a ledger of what they sent, and the check.

A client thread writes new objects one after another until told to stop;
each write has its own object id, data that names it, and a correlation id.
The ledger records every write sent, every write acknowledged (with the time)
and every error by kind. Afterwards ``verify`` reads the rows in the database
and says which acknowledged writes are missing and which stored object holds
data that is not the data of the request that wrote it.
"""

from __future__ import annotations

import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg

from stowage_testing.tools import eventually

#: Pause of a client after an error, so a dead server is not hammered in a hot loop.
ERROR_PAUSE = 0.02


@dataclass(frozen=True)
class Write:
    """One write a client sent: its object id, its data and its correlation id."""

    client: int
    object_id: str
    data: dict[str, Any]
    correlation_id: str


def new_write(client: int, n: int, run: str) -> Write:
    object_id = f"{run}-c{client}-{n}"
    return Write(
        client=client,
        object_id=object_id,
        data={"request": object_id, "client": client, "n": n, "nonce": uuid.uuid4().hex},
        correlation_id=f"fault-{object_id}",
    )


#: Sends one write; answers None when acknowledged, else the kind of error and its detail.
Send = Callable[[Write], tuple[str, str] | None]


@dataclass
class Ledger:
    """What the clients sent, what was acknowledged and when, and the errors by kind."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: dict[str, Write] = field(default_factory=dict)
    acked: dict[str, Write] = field(default_factory=dict)
    ack_times: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    #: The first detail seen of each kind of error, to say what a surprise was.
    samples: dict[str, str] = field(default_factory=dict)
    crashes: list[str] = field(default_factory=list)

    def record_sent(self, write: Write) -> None:
        with self.lock:
            self.sent[write.object_id] = write

    def record_ack(self, write: Write) -> None:
        with self.lock:
            self.acked[write.object_id] = write
            self.ack_times.append(time.monotonic())

    def record_error(self, kind: str, detail: str = "") -> None:
        with self.lock:
            self.errors[kind] += 1
            self.samples.setdefault(kind, detail)

    def acknowledged(self) -> int:
        with self.lock:
            return len(self.acked)

    def error_count(self) -> int:
        with self.lock:
            return sum(self.errors.values())

    def acks_since(self, moment: float) -> list[float]:
        with self.lock:
            return [t for t in self.ack_times if t >= moment]


@contextmanager
def burst(
    clients: int, sender: Callable[[int], Send], run: str, ledger: Ledger
) -> Iterator[Ledger]:
    """Run ``clients`` threads writing through ``sender(i)`` until the block ends."""
    stop = threading.Event()

    def client(index: int) -> None:
        try:
            send = sender(index)
            n = 0
            while not stop.is_set():
                n += 1
                write = new_write(index, n, run)
                ledger.record_sent(write)
                failure = send(write)
                if failure is None:
                    ledger.record_ack(write)
                else:
                    ledger.record_error(*failure)
                    stop.wait(ERROR_PAUSE)
        except Exception:  # a client that dies would hide the errors it saw
            with ledger.lock:
                ledger.crashes.append(traceback.format_exc())

    threads = [
        threading.Thread(target=client, args=(i,), name=f"client-{i}", daemon=True)
        for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    try:
        yield ledger
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a client thread did not stop"
    assert not ledger.crashes, ledger.crashes[0]


def unexpected_errors(ledger: Ledger, allowed: set[str]) -> dict[str, str]:
    """Each kind of error outside ``allowed``, with the first detail seen of it."""
    return {kind: ledger.samples[kind] for kind in ledger.errors if kind not in allowed}


def wait_for_acks(ledger: Ledger, count: int, since: float = 0.0, timeout: float = 20.0) -> None:
    eventually(
        lambda: len(ledger.acks_since(since)) >= count,
        timeout=timeout,
        what=f"{count} writes acknowledged (errors so far: {dict(ledger.errors)})",
    )


@dataclass(frozen=True)
class Verdict:
    """The database against the ledger."""

    lost: list[str]
    foreign: list[str]
    unknown: list[str]
    stored: int


def stored_objects(dsn: str, collection: str) -> dict[str, tuple[Any, str]]:
    """Every object of ``collection`` in a worker's database: id → (data, correlation id)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT object_id, data, correlation_id FROM objects WHERE collection = %s",
            (collection,),
        ).fetchall()
    return {str(oid): (data, str(cid)) for oid, data, cid in rows}


def verify(ledger: Ledger, stored: dict[str, tuple[Any, str]]) -> Verdict:
    """Lost: acknowledged but missing or different. Foreign: stored data of another request.

    Unknown: a stored object no client ever sent.
    """
    lost = [oid for oid, w in ledger.acked.items() if stored.get(oid) != (w.data, w.correlation_id)]
    foreign = [
        oid
        for oid, (data, cid) in stored.items()
        if oid in ledger.sent
        and (data != ledger.sent[oid].data or cid != ledger.sent[oid].correlation_id)
    ]
    unknown = [oid for oid in stored if oid not in ledger.sent]
    return Verdict(lost=lost, foreign=foreign, unknown=unknown, stored=len(stored))


@dataclass(frozen=True)
class FaultRow:
    """One line of the fault table printed at the end of the session."""

    fault: str
    load: str
    acknowledged: int
    lost: int
    errors: Counter[str]
    #: From the fault to the first write acknowledged after the repair began.
    outage_s: float
    #: From the repair (restart issued) to the first write acknowledged after it.
    recovery_s: float

    HEADER = ("fault", "load", "writes acknowledged", "lost", "errors seen", "outage", "recovery")

    def cells(self) -> tuple[str, ...]:
        errors = ", ".join(f"{kind} x{n}" for kind, n in self.errors.most_common()) or "none"
        return (
            self.fault,
            self.load,
            str(self.acknowledged),
            str(self.lost),
            errors,
            f"{self.outage_s:.2f} s",
            f"{self.recovery_s:.2f} s",
        )


def first_ack_after(ledger: Ledger, moment: float) -> float:
    """Seconds from ``moment`` to the first acknowledgement at or after it."""
    times = ledger.acks_since(moment)
    assert times, "no write was acknowledged after the repair"
    return min(times) - moment
