"""Identity links, preferences, and the user's rights: export and erasure."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import sqlalchemy as sa

from stowage.v1 import worker_pb2 as pb
from stowage_testing.worker import WorkerProcess
from tests.tenant_worker.conftest import Client, data, database, status_of


def test_identity_link_is_stable_and_unique_under_concurrency(client: Client) -> None:
    subject = uuid.uuid4().hex
    request = pb.ResolveUserRequest(issuer="https://issuer.test/", subject=subject)
    with ThreadPoolExecutor(8) as pool:
        replies = list(
            pool.map(
                lambda _: client.stub.ResolveUser(request, metadata=client.metadata(), timeout=15),
                range(16),
            )
        )
    assert len({r.user_id for r in replies}) == 1
    assert sum(r.created for r in replies) == 1
    other_issuer = pb.ResolveUserRequest(issuer="https://other.test/", subject=subject)
    assert (
        client.stub.ResolveUser(other_issuer, metadata=client.metadata()).user_id
        != replies[0].user_id
    )


def test_preferences_start_empty_and_merge_patches(client: Client) -> None:
    empty = client.call("GetPreferences", pb.GetPreferencesRequest())
    assert (json.loads(empty.data_json), empty.version) == ({}, 0)
    patch = {"theme": "dark", "units": {"temp": "C", "len": "m"}}
    first = client.call(
        "UpdatePreferences",
        pb.UpdatePreferencesRequest(merge_patch_json=json.dumps(patch).encode()),
    )
    assert first.version == 1
    second = client.call(
        "UpdatePreferences",
        pb.UpdatePreferencesRequest(
            merge_patch_json=b'{"theme": null, "units": {"temp": "F"}, "lang": "de"}',
            expected_version=1,
        ),
    )
    assert json.loads(second.data_json) == {"units": {"temp": "F", "len": "m"}, "lang": "de"}
    assert second.version == 2
    error = status_of(
        lambda: client.call(
            "UpdatePreferences",
            pb.UpdatePreferencesRequest(merge_patch_json=b"{}", expected_version=1),
        )
    )
    assert error.code() == grpc.StatusCode.ABORTED
    current = pb.Preferences.FromString(
        dict(error.trailing_metadata())["stowage-current-preferences-bin"]
    )
    assert current.version == 2


def test_export_streams_everything_of_the_user_and_nothing_of_others(client: Client) -> None:
    other = client.as_new_user()
    other.put("items", "theirs", {"x": 1})
    client.put("items", "a", {"v": 1})
    client.put("notes", "n", {"title": "hello"})
    client.put("cache", "c", {"v": 3})
    client.call("UpdatePreferences", pb.UpdatePreferencesRequest(merge_patch_json=b'{"t": 1}'))
    records = list(
        client.stub.ExportUserData(
            pb.ExportUserDataRequest(), metadata=client.metadata(), timeout=15
        )
    )
    kinds = [r.WhichOneof("record") for r in records]
    assert kinds[:3] == ["user_id", "identity", "preferences"]
    assert records[0].user_id == client.user_id
    assert records[1].identity.issuer == "https://issuer.test/"
    assert json.loads(records[2].preferences.data_json) == {"t": 1}
    objects = {(r.object.collection, r.object.id): data(r.object) for r in records[3:]}
    assert objects == {
        ("cache", "c"): {"v": 3},
        ("items", "a"): {"v": 1},
        ("notes", "n"): {"title": "hello"},
    }


def test_export_of_many_objects_streams_them_all(client: Client) -> None:
    for i in range(450):
        client.put("items", f"bulk-{i:04d}", {"i": i})
    records = list(
        client.stub.ExportUserData(pb.ExportUserDataRequest(), metadata=client.metadata())
    )
    assert sum(r.WhichOneof("record") == "object" for r in records) == 450


def test_erasure_deletes_everything_of_the_user_and_records_that_it_happened(
    client: Client, worker: WorkerProcess
) -> None:
    other = client.as_new_user()
    other.put("items", "survivor", {"x": 1})
    client.put("items", "a", {"secret": "s3cr3t"})
    client.put("items", "b", {"secret": "s3cr3t"}, idempotency_key="k1")
    client.call("UpdatePreferences", pb.UpdatePreferencesRequest(merge_patch_json=b'{"t": 1}'))
    refused = status_of(lambda: client.call("EraseUserData", pb.EraseUserDataRequest()))
    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "confirm" in refused.details()

    result = client.call("EraseUserData", pb.EraseUserDataRequest(confirm=True))
    assert (result.objects_deleted, result.preferences_deleted, result.identities_deleted) == (
        2,
        True,
        1,
    )
    with database(worker).connect() as conn:
        for table, column in [
            ("objects", "owner"),
            ("preferences", "owner"),
            ("idempotency_keys", "owner"),
            ("users", "id"),
        ]:
            left = conn.execute(
                sa.text(f"SELECT count(*) FROM {table} WHERE {column} = :u"),
                {"u": client.user_id},
            ).scalar_one()
            assert left == 0, table
        erase = conn.execute(
            sa.text("SELECT detail FROM audit_events WHERE user_id = :u AND action = 'user.erase'"),
            {"u": client.user_id},
        ).scalar_one()
        audit_text = json.dumps(
            [list(r) for r in conn.execute(sa.text("SELECT * FROM audit_events")).all()],
            default=str,
        )
    detail = erase if isinstance(erase, dict) else json.loads(erase)
    assert detail == {
        "objects": 2,
        "preferences": True,
        "identities": 1,
        # what the erasure did in shared spaces (none here), and under which policy
        "spaces_left": 0,
        "spaces_deleted": 0,
        "space_objects_deleted": 0,
        "space_files_deleted": 0,
        "space_erasure": "pseudonymise",
        # and of their files (none here)
        "files_deleted": 0,
        "file_bytes_deleted": 0,
        "file_chunks_deleted": 0,
        "file_objects_deleted": 0,
    }
    assert "s3cr3t" not in audit_text
    assert data(other.get("items", "survivor")) == {"x": 1}


def test_writes_by_an_erased_user_id_ask_to_resolve_again(client: Client) -> None:
    client.put("items", "a", {"v": 1})
    client.call("EraseUserData", pb.EraseUserDataRequest(confirm=True))
    error = status_of(lambda: client.put("items", "a", {"v": 2}))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "resolve" in error.details()
    assert status_of(lambda: client.get("items", "a")).code() == grpc.StatusCode.NOT_FOUND


def test_erasure_pseudonymises_the_audit_trail_and_leaves_no_id_or_payload_on_disk(
    client: Client, worker: WorkerProcess
) -> None:
    chosen_id = f"alice.smith:passport-scan-{uuid.uuid4().hex[:8]}"
    payload = f"s3cr3t-{uuid.uuid4().hex}"
    client.put("items", chosen_id, {"scan": payload})
    client.put("items", chosen_id, {"scan": payload + "-v2"})
    client.put("items", "other-object", {"scan": payload})
    client.delete("items", "other-object")
    client.call("EraseUserData", pb.EraseUserDataRequest(confirm=True))

    with database(worker).connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT action, collection, object_id, version, correlation_id FROM audit_events "
                "WHERE user_id = :u ORDER BY id"
            ),
            {"u": client.user_id},
        ).all()
        dump = json.dumps(
            [list(r) for r in conn.execute(sa.text("SELECT * FROM audit_events")).all()],
            default=str,
        )
    # What happened, when and at which version stays; the ids the user chose do not.
    actions = [(r.action, r.collection, r.version) for r in rows]
    assert actions == [
        ("user.create", None, None),
        ("object.create", "items", 1),
        ("object.replace", "items", 2),
        ("object.create", "items", 1),
        ("object.delete", "items", 1),
        ("user.erase", None, None),
    ]
    pseudonyms = [r.object_id for r in rows if r.object_id is not None]
    assert all(p.startswith("~") and len(p) == 41 for p in pseudonyms)
    # One object's events still match each other, and not another object's.
    assert pseudonyms[0] == pseudonyms[1] != pseudonyms[2] == pseudonyms[3]
    assert chosen_id not in dump and "other-object" not in dump and payload not in dump

    if worker.database_url.startswith("sqlite"):
        # Nothing of it is left in the database file or its write-ahead log either.
        path = Path(worker.database_url.split(":///", 1)[1])
        for file in (path, path.with_name(path.name + "-wal")):
            content = file.read_bytes() if file.exists() else b""
            assert chosen_id.encode() not in content, file
            assert payload.encode() not in content, file
