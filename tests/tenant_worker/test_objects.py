"""Objects: create, replace, get, list, delete, conflicts and replays."""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

import grpc
import sqlalchemy as sa

from stowage.v1 import worker_pb2 as pb
from tests.tenant_worker.conftest import POLICY, Client, data, database, open_client, status_of


def test_put_then_get_returns_the_object_with_its_bookkeeping(client: Client) -> None:
    client.correlation_id = "corr-put-1"
    put = client.put("items", "first", {"colour": "blue", "n": 1})
    assert put.created
    got = client.get("items", "first")
    assert data(got) == {"colour": "blue", "n": 1}
    assert (got.collection, got.id, got.version, got.schema_version) == ("items", "first", 1, 1)
    assert got.correlation_id == "corr-put-1"
    assert got.created_at.seconds > 0 and got.updated_at == got.created_at
    assert not got.HasField("expires_at")
    assert got.size_bytes == len(b'{"colour":"blue","n":1}')


def test_replace_bumps_version_and_keeps_created_time(client: Client) -> None:
    first = client.put("items", "doc", {"v": 1}).object
    second = client.put("items", "doc", {"v": 2})
    assert not second.created
    assert second.object.version == 2
    assert second.object.created_at == first.created_at
    assert data(client.get("items", "doc")) == {"v": 2}


def test_put_without_id_generates_one(client: Client) -> None:
    put = client.put("items", "", {"a": 1})
    assert put.object.id
    assert data(client.get("items", put.object.id)) == {"a": 1}


def test_a_user_never_sees_another_users_objects(client: Client) -> None:
    other = client.as_new_user()
    client.put("items", "private", {"secret": True})
    assert status_of(lambda: other.get("items", "private")).code() == grpc.StatusCode.NOT_FOUND
    assert list(other.list("items").objects) == []
    assert status_of(lambda: other.delete("items", "private")).code() == grpc.StatusCode.NOT_FOUND
    other.put("items", "private", {"mine": True})
    assert data(client.get("items", "private")) == {"secret": True}


def test_delete_removes_the_object(client: Client) -> None:
    client.put("items", "gone", {"x": 1})
    deleted = client.delete("items", "gone")
    assert (deleted.id, deleted.version) == ("gone", 1)
    assert status_of(lambda: client.get("items", "gone")).code() == grpc.StatusCode.NOT_FOUND
    assert status_of(lambda: client.delete("items", "gone")).code() == grpc.StatusCode.NOT_FOUND


def test_stale_expected_version_returns_current_object(client: Client) -> None:
    client.put("items", "c", {"v": 1})
    client.put("items", "c", {"v": 2}, expected_version=1)
    error = status_of(lambda: client.put("items", "c", {"v": 3}, expected_version=1))
    assert error.code() == grpc.StatusCode.ABORTED
    assert "version 2" in error.details()
    trailing = dict(error.trailing_metadata())
    current = pb.StoredObject.FromString(trailing["stowage-current-object-bin"])
    assert (current.version, data(current)) == (2, {"v": 2})
    assert data(client.get("items", "c")) == {"v": 2}


def test_create_only_conflicts_when_the_object_exists(client: Client) -> None:
    client.put("items", "once", {"v": 1}, expected_version=0)
    error = status_of(lambda: client.put("items", "once", {"v": 9}, expected_version=0))
    assert error.code() == grpc.StatusCode.ABORTED
    assert data(client.get("items", "once")) == {"v": 1}


def test_expected_version_of_a_missing_object_is_not_found(client: Client) -> None:
    error = status_of(lambda: client.put("items", "nope", {"v": 1}, expected_version=3))
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_delete_with_stale_expected_version_conflicts(client: Client) -> None:
    client.put("items", "d", {"v": 1})
    client.put("items", "d", {"v": 2})
    error = status_of(lambda: client.delete("items", "d", expected_version=1))
    assert error.code() == grpc.StatusCode.ABORTED
    assert client.get("items", "d").version == 2


def test_concurrent_writers_win_exactly_once_per_version_and_lose_no_update(
    client: Client,
) -> None:
    """N writers do read-modify-write with expected_version; every append survives."""
    writers, appends_each = 6, 5
    client.put("items", "counter", {"log": []})
    winners: dict[int, list[str]] = {}
    lock = threading.Lock()

    def writer(name: str) -> int:
        conflicts = 0
        for i in range(appends_each):
            while True:
                current = client.get("items", "counter")
                log = data(current)["log"] + [f"{name}-{i}"]
                try:
                    put = client.put(
                        "items", "counter", {"log": log}, expected_version=current.version
                    )
                except grpc.RpcError as e:
                    assert e.code() == grpc.StatusCode.ABORTED, e
                    conflicts += 1
                    continue
                with lock:
                    winners.setdefault(put.object.version, []).append(name)
                break
        return conflicts

    with ThreadPoolExecutor(writers) as pool:
        conflicts = sum(pool.map(writer, [f"w{n}" for n in range(writers)]))

    final = client.get("items", "counter")
    total = writers * appends_each
    assert final.version == 1 + total
    assert all(len(names) == 1 for names in winners.values())
    assert sorted(winners) == list(range(2, 2 + total))
    assert sorted(data(final)["log"]) == sorted(
        f"w{n}-{i}" for n in range(writers) for i in range(appends_each)
    )
    assert conflicts >= 0  # contention varies; correctness is asserted above


def test_concurrent_blind_writes_each_get_their_own_version(client: Client) -> None:
    with ThreadPoolExecutor(8) as pool:
        versions = list(
            pool.map(lambda i: client.put("items", "blind", {"i": i}).object.version, range(24))
        )
    assert sorted(versions) == list(range(1, 25))


def test_replayed_idempotency_key_returns_first_result_and_writes_nothing(
    client: Client, worker
) -> None:
    first = client.put("items", "idem", {"v": 1}, idempotency_key="key-1")
    replay = client.put("items", "idem", {"v": 1}, idempotency_key="key-1")
    assert replay.replayed and not first.replayed
    assert replay.object.version == first.object.version == 1
    assert client.get("items", "idem").version == 1
    with database(worker).connect() as conn:
        writes = conn.execute(
            sa.text("SELECT count(*) FROM audit_events WHERE user_id = :u AND object_id = 'idem'"),
            {"u": client.user_id},
        ).scalar_one()
    assert writes == 1


def test_replayed_create_with_generated_id_returns_the_same_object(client: Client) -> None:
    first = client.put("items", "", {"v": 1}, idempotency_key="gen-1")
    again = client.put("items", "", {"v": 1}, idempotency_key="gen-1")
    assert again.replayed and again.object.id == first.object.id
    assert len(client.list("items").objects) == 1


def test_concurrent_replays_of_one_key_write_once(client: Client) -> None:
    with ThreadPoolExecutor(6) as pool:
        results = list(
            pool.map(
                lambda _: client.put("items", "race", {"v": 1}, idempotency_key="race-key"),
                range(6),
            )
        )
    assert {r.object.version for r in results} == {1}
    assert sum(not r.replayed for r in results) == 1
    assert client.get("items", "race").version == 1


def test_idempotency_key_reused_for_another_request_is_refused(client: Client) -> None:
    client.put("items", "k", {"v": 1}, idempotency_key="dup")
    error = status_of(lambda: client.put("items", "k", {"v": 2}, idempotency_key="dup"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "idempotency_key" in error.details()
    assert data(client.get("items", "k")) == {"v": 1}


def test_replayed_delete_returns_first_result(client: Client) -> None:
    client.put("items", "del", {"v": 1})
    first = client.delete("items", "del", idempotency_key="del-1")
    again = client.delete("items", "del", idempotency_key="del-1")
    assert again.replayed and again.version == first.version == 1


def test_list_pages_in_stable_order_with_a_capped_page_size(client: Client) -> None:
    ids = [f"obj-{i:03d}" for i in range(130)]
    for object_id in reversed(ids):
        client.put("items", object_id, {"id": object_id})
    seen: list[str] = []
    cursor = ""
    pages = 0
    while True:
        page = client.list("items", page_size=1000, cursor=cursor)
        assert len(page.objects) <= 100
        seen += [o.id for o in page.objects]
        pages += 1
        cursor = page.next_cursor
        if not cursor:
            break
    assert seen == ids
    assert pages == 2
    default_page = client.list("items")
    assert [o.id for o in default_page.objects] == ids[:20]


def test_cursor_from_another_user_or_collection_is_refused(client: Client) -> None:
    for i in range(3):
        client.put("items", f"o{i}", {"i": i})
    cursor = client.list("items", page_size=1).next_cursor
    assert cursor
    other = client.as_new_user()
    error = status_of(lambda: other.list("items", cursor=cursor))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "cursor" in error.details()
    error = status_of(lambda: client.list("cache", cursor=cursor))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = status_of(lambda: client.list("items", cursor="not-a-cursor"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_every_mutation_writes_an_audit_row(client: Client, worker) -> None:
    client.correlation_id = f"audit-{uuid.uuid4().hex[:8]}"
    client.put("items", "a", {"v": 1})
    client.put("items", "a", {"v": 2})
    client.delete("items", "a")
    client.call(
        "UpdatePreferences", pb.UpdatePreferencesRequest(merge_patch_json=b'{"theme":"dark"}')
    )
    with database(worker).connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT action, collection, object_id, version, correlation_id, at "
                "FROM audit_events WHERE user_id = :u ORDER BY id"
            ),
            {"u": client.user_id},
        ).all()
    actions = [(r.action, r.object_id, r.version) for r in rows]
    assert actions == [
        ("user.create", None, None),
        ("object.create", "a", 1),
        ("object.replace", "a", 2),
        ("object.delete", "a", 2),
        ("preferences.update", None, 1),
    ]
    assert all(r.correlation_id == client.correlation_id for r in rows[1:])
    assert all(r.at is not None for r in rows)
    assert all("dark" not in json.dumps(list(r), default=str) for r in rows)


def test_an_idempotency_key_past_its_time_is_forgotten_and_may_be_used_again(
    client: Client, worker
) -> None:
    client.put("items", "old-key", {"v": 1}, idempotency_key="yesterday")
    with database(worker).begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE idempotency_keys SET created_at = :t WHERE owner = :u AND key = 'yesterday'"
            ),
            {"t": datetime.now(UTC) - timedelta(days=2), "u": client.user_id},
        )
    again = client.put("items", "old-key", {"v": 2}, idempotency_key="yesterday")
    assert not again.replayed and again.object.version == 2
    replay = client.put("items", "old-key", {"v": 2}, idempotency_key="yesterday")
    assert replay.replayed and replay.object.version == 2


def test_usage_counters_follow_every_kind_of_write(make_worker) -> None:
    """Creates, replaces (growing and shrinking), expired rewrites and deletes keep the
    tenant's and each user's counters equal to what is stored."""
    w = make_worker(POLICY)
    with ExitStack() as stack:
        alice = open_client(w, stack)
        bob = alice.as_new_user()
        alice.put("items", "a", {"s": "x" * 50})
        alice.put("items", "a", {"s": "x"})
        alice.put("notes", "n", {"title": "t" * 30})
        bob.put("items", "b", {"v": 1}, ttl_seconds=30)
        with database(w).begin() as conn:
            conn.execute(
                sa.text("UPDATE objects SET expires_at = :t WHERE object_id = 'b'"),
                {"t": datetime.now(UTC) - timedelta(minutes=1)},
            )
        assert bob.put("items", "b", {"v": 2, "pad": "y" * 20}).created
        bob.put("items", "c", {"v": 3})
        bob.delete("items", "c")
        with database(w).connect() as conn:
            stored = conn.execute(
                sa.text("SELECT count(*), coalesce(sum(size_bytes), 0) FROM objects")
            ).one()
            counted = conn.execute(sa.text("SELECT sum(objects), sum(bytes) FROM usage")).one()
            per_user = set(
                conn.execute(
                    sa.text("SELECT owner, count(*), sum(size_bytes) FROM objects GROUP BY owner")
                ).all()
            )
            user_rows = set(conn.execute(sa.text("SELECT owner, objects, bytes FROM user_usage")))
    assert tuple(counted) == tuple(stored) == (3, stored[1])
    assert {tuple(r) for r in per_user} == {tuple(r) for r in user_rows}
