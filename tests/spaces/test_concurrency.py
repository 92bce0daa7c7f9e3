"""Many members on one object, and a change feed that misses nothing and repeats nothing."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import grpc

from tests.spaces.conftest import Member, current_of

EDITORS = 16
ROUNDS = 3


def test_sixteen_editors_on_one_object_give_one_winner_per_version_and_name_it(
    member: Callable[..., Member],
) -> None:
    owner = member("Owner")
    space = owner.create("Board")
    editors = [member(f"Editor {i}") for i in range(EDITORS)]
    for e in editors:
        owner.invite(space, e)
    handles = {e.handle(space): e for e in editors}
    owner.put(space, "card", {"items": []})
    version = 1
    with ThreadPoolExecutor(EDITORS) as pool:
        for round_ in range(ROUNDS):
            start = threading.Barrier(EDITORS)

            def edit(
                e: Member, v: int = version, r: int = round_, start: threading.Barrier = start
            ) -> tuple[Member, object]:
                start.wait()
                try:
                    return e, e.put(space, "card", {"items": [e.subject, r]}, expected_version=v)
                except grpc.RpcError as error:
                    return e, error

            outcomes = list(pool.map(edit, editors))
            winners = [e for e, o in outcomes if not isinstance(o, grpc.RpcError)]
            losers = [o for _, o in outcomes if isinstance(o, grpc.RpcError)]
            assert len(winners) == 1, f"round {round_}: {len(winners)} winners"
            (winner,) = winners
            assert len(losers) == EDITORS - 1
            for lost in losers:
                assert lost.code() == grpc.StatusCode.ABORTED
                current = current_of(lost)
                assert current.object.version == version + 1
                assert handles[current.updated_by.member] is winner
                assert current.updated_by.name == winner_name(winner, editors)
            version += 1
    assert owner.get(space, "card").object.version == 1 + ROUNDS


def winner_name(winner: Member, editors: list[Member]) -> str:
    return f"Editor {editors.index(winner)}"


def test_a_component_following_the_feed_sees_every_change_exactly_once(
    member: Callable[..., Member],
) -> None:
    alice, bob, carol = member("Alice"), member("Bob"), member("Carol")
    space = alice.create("Shopping")
    alice.invite(space, bob)
    alice.invite(space, carol)
    changes_each = 40
    done = threading.Event()

    def write(m: Member, prefix: str) -> None:
        for i in range(changes_each):
            m.put(space, f"{prefix}-{i % 7}", {"items": [i]})

    seen: list[int] = []
    cursor = ""
    writers = [threading.Thread(target=write, args=(m, p)) for m, p in ((bob, "b"), (carol, "c"))]
    for t in writers:
        t.start()
    watcher = threading.Thread(target=lambda: ([t.join() for t in writers], done.set()))
    watcher.start()
    while True:
        finished = done.is_set()
        page = alice.changes(space, cursor, limit=7)
        seen += [c.seq for c in page.changes]
        cursor = page.next_cursor
        if finished and not page.more and not page.changes:
            break
    watcher.join()
    total = 2 * changes_each
    assert seen == list(range(1, total + 1))
    assert alice.changes(space, cursor).changes == []
    bob.put(space, "b-late", {"items": []})
    (late,) = alice.changes(space, cursor).changes
    assert (late.seq, late.id, late.author.name) == (total + 1, "b-late", "Bob")
