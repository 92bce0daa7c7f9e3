"""What is accepted can be read back: arbitrary JSON through the real gateway → worker.

Hypothesis generates JSON of every awkward kind (deep nesting, huge and negative
numbers, floats at the edges, NaN and Infinity, lone surrogates, U+0000, long
keys) and saves it through a real gateway into a worker on PostgreSQL and into
one on SQLite. Every save either round-trips exactly through get, list and
export, or is refused with ``invalid_argument`` naming a field, as the rule in
``stowage.values`` says; never an internal error, never a traceback in a log.
The oracle below is written apart from that module, from the rule's wording.

Runs are bounded and reproducible (``derandomize=True``, no example database).
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from stowage_testing.gateway import (
    MCP_HEADERS,
    WORKER_POLICY,
    GatewayProcess,
    Issuer,
    rpc,
    running_gateway,
    tenant_entry,
)
from stowage_testing.postgres import PostgresServer
from stowage_testing.properties import hypothesis_home, reproducible
from stowage_testing.worker import WorkerProcess, running_worker
from tests.tenant_worker.conftest import database

pytestmark = pytest.mark.postgres

BACKENDS = ("pgvalues", "sqlvalues")
TRACEBACK_MARKERS = ("Traceback (most recent call last)", "Exception in ASGI")


# --- the oracle: the rule as the README states it ------------------------------------

SAFE = 2**53 - 1
DEPTH = 64


def breaks_rule(value: Any, depth: int = 1) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, str):
        return "\x00" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, float):
        return not math.isfinite(value) or abs(value) > SAFE
    if isinstance(value, int):
        return abs(value) > SAFE
    if depth > DEPTH:
        return True
    if isinstance(value, list):
        return any(breaks_rule(v, depth + 1) for v in value)
    return any(breaks_rule(k) or breaks_rule(v, depth + 1) for k, v in value.items())


def same(sent: Any, got: Any) -> bool:
    """JSON equality: numbers by value (1 and 1.0 are one JSON number), nothing else mixed."""
    if isinstance(sent, bool) or isinstance(got, bool):
        return type(sent) is type(got) and sent == got
    if isinstance(sent, int | float) and isinstance(got, int | float):
        return sent == got
    if isinstance(sent, list) and isinstance(got, list):
        return len(sent) == len(got) and all(same(a, b) for a, b in zip(sent, got, strict=True))
    if isinstance(sent, dict) and isinstance(got, dict):
        return sent.keys() == got.keys() and all(same(sent[k], got[k]) for k in sent)
    return type(sent) is type(got) and sent == got


def without_nulls(patch: dict[str, Any]) -> dict[str, Any]:
    """A merge patch applied to ``{}`` (RFC 7396): nulls removed, objects recursively."""
    return {
        k: without_nulls(v) if isinstance(v, dict) else v for k, v in patch.items() if v is not None
    }


# --- strategies ------------------------------------------------------------------------

AWKWARD_TEXT = st.sampled_from(["\ud800", "a\udfffb", "\x00", "nul\x00x", "é\ud83d", "😀"])
# Mostly plain values, with the awkward ones often enough to be met in every run.
TEXT = st.one_of(st.text(max_size=24), st.text(max_size=24), AWKWARD_TEXT)
SAFE_FLOATS = st.floats(min_value=-SAFE, max_value=SAFE, allow_nan=False)
NUMBERS = st.one_of(
    st.integers(min_value=-SAFE, max_value=SAFE),
    SAFE_FLOATS,  # subnormals, ±0.0, the floats that PostgreSQL's numeric writes out longest
    st.sampled_from([SAFE, -SAFE, SAFE + 1, -SAFE - 1, 2**63, -(2**63) - 1, 2**70, 1e300]),
    st.floats(),  # NaN, ±Infinity, the largest finite floats
)
SCALARS = st.none() | st.booleans() | NUMBERS | TEXT
TREES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(TEXT | st.text(min_size=100, max_size=300), children, max_size=4)
    ),
    max_leaves=20,
)


def nested(depth: int, kind: str) -> Any:
    value: Any = "leaf"
    for _ in range(depth - 1):
        value = [value] if kind == "list" else {"k": value}
    return value


DEEP = st.builds(nested, st.integers(min_value=DEPTH - 3, max_value=300), st.just("list")) | (
    st.builds(nested, st.integers(min_value=DEPTH - 3, max_value=300), st.just("dict"))
)
VALUES = st.one_of(TREES, TREES, TREES, DEEP)  # deep values a quarter of the time


# --- the platform: one gateway, a worker on PostgreSQL and one on SQLite ------------------


class Platform:
    def __init__(
        self, gateway: GatewayProcess, issuer: Issuer, workers: dict[str, WorkerProcess]
    ) -> None:
        self.gateway, self.issuer, self.workers = gateway, issuer, workers
        self.client = httpx.Client(timeout=30)
        self.offsets = {"gateway": len(gateway.logs())} | {
            name: len(w.logs()) for name, w in workers.items()
        }
        self.ids = iter(range(1, 10**9))

    def call(self, tenant: str, token: str, tool: str, arguments: Any) -> dict[str, Any]:
        """One ``tools/call`` as raw JSON (NaN and lone surrogates as Python writes them)."""
        body = json.dumps(rpc("tools/call", {"name": tool, "arguments": arguments}, next(self.ids)))
        response = self.client.post(
            self.gateway.url(tenant),
            content=body.encode(),
            headers={**MCP_HEADERS, "authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200, response.text[:500]
        answer: dict[str, Any] = response.json()
        assert "error" not in answer, answer  # a JSON-RPC error would be an internal fault here
        return answer["result"]

    def token(self, tenant: str) -> str:
        return self.issuer.token(self.gateway.url(tenant), subject=f"v-{uuid.uuid4().hex[:16]}")

    def assert_no_traceback(self) -> None:
        logs = {"gateway": self.gateway.logs()} | {n: w.logs() for n, w in self.workers.items()}
        for name, text in logs.items():
            logged = text[self.offsets[name] :]
            for marker in TRACEBACK_MARKERS:
                assert marker not in logged, (name, logged[logged.find(marker) - 1500 :][:4000])


@pytest.fixture(scope="module")
def platform(
    postgres: PostgresServer, issuer: Issuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    root = tmp_path_factory.mktemp("values")
    urls = {
        "pgvalues": postgres.sqlalchemy_url(postgres.create_database("values")),
        "sqlvalues": f"sqlite+aiosqlite:///{root / 'sqlvalues.db'}",
    }
    policy = {**WORKER_POLICY, "quotas": {**WORKER_POLICY["quotas"], "maxObjectBytes": "256Ki"}}
    with (
        running_worker(urls["pgvalues"], root / "pg", policy, tenant="pgvalues") as pg,
        running_worker(urls["sqlvalues"], root / "sql", policy, tenant="sqlvalues") as sql,
    ):
        workers = {"pgvalues": pg, "sqlvalues": sql}
        (root / "gateway").mkdir()
        g = GatewayProcess(workdir=root / "gateway")
        g.write_tenants([tenant_entry(n, g, issuer, w.address) for n, w in workers.items()])
        with running_gateway(root / "gateway", port=g.port) as gateway:
            yield Platform(gateway, issuer, workers)


@pytest.fixture
def hypothesis_dir(tmp_path: Path) -> Iterator[None]:
    with hypothesis_home(tmp_path):
        yield


def structured(result: dict[str, Any]) -> dict[str, Any]:
    assert not result.get("isError"), result
    content: dict[str, Any] = result["structuredContent"]
    assert json.loads(result["content"][0]["text"]) == content
    return content


def refusal(result: dict[str, Any]) -> dict[str, Any]:
    assert result.get("isError") is True, result
    error: dict[str, Any] = result["_meta"]["stowage.dev/error"]["error"]
    return error


# --- properties ------------------------------------------------------------------------


@pytest.mark.usefixtures("hypothesis_dir")
def test_every_saved_value_round_trips_through_get_list_and_export_or_is_refused(
    platform: Platform,
) -> None:
    tried = {"accepted": 0, "refused": 0}

    @reproducible(120)
    @given(value=VALUES)
    def check(value: Any) -> None:
        data = {"v": value}
        for tenant in BACKENDS:
            token = platform.token(tenant)
            saved = platform.call(tenant, token, "items_save", {"data": data})
            if breaks_rule(data):
                error = refusal(saved)
                assert error["code"] == "invalid_argument", error
                assert error["field"].startswith("data"), error
                tried["refused"] += 1
                continue
            obj = structured(saved)["object"]
            tried["accepted"] += 1
            got = structured(platform.call(tenant, token, "items_get", {"id": obj["id"]}))
            assert same(data, got["object"]["data"]), (tenant, data, got)
            page = structured(platform.call(tenant, token, "items_list", {}))
            assert [o["id"] for o in page["objects"]] == [obj["id"]]
            assert same(data, page["objects"][0]["data"]), (tenant, data, page)
            export = structured(platform.call(tenant, token, "my_data_export", {}))
            assert [o["id"] for o in export["objects"]] == [obj["id"]]
            assert same(data, export["objects"][0]["data"]), (tenant, data, export)

    check()
    platform.assert_no_traceback()
    print(f"stored values: {tried} on {BACKENDS}")
    assert tried["accepted"] > 40 and tried["refused"] > 40, tried


@pytest.mark.usefixtures("hypothesis_dir")
def test_every_preferences_patch_is_merged_and_read_back_or_is_refused(
    platform: Platform,
) -> None:
    tried = {"accepted": 0, "refused": 0}

    @reproducible(100)
    @given(patch=st.dictionaries(TEXT, VALUES, min_size=1, max_size=1))
    def check(patch: dict[str, Any]) -> None:
        for tenant in BACKENDS:
            token = platform.token(tenant)
            result = platform.call(tenant, token, "preferences_update", {"patch": patch})
            if breaks_rule(patch):
                error = refusal(result)
                assert error["code"] == "invalid_argument", error
                assert error["field"].startswith("patch"), error
                tried["refused"] += 1
                continue
            tried["accepted"] += 1
            expected = without_nulls(patch)
            assert same(expected, structured(result)["preferences"]), (tenant, patch)
            read = structured(platform.call(tenant, token, "preferences_get", {}))
            assert same(expected, read["preferences"]), (tenant, patch, read)
            export = structured(platform.call(tenant, token, "my_data_export", {}))
            assert same(expected, export["preferences"]["preferences"]), (tenant, export)

    check()
    platform.assert_no_traceback()
    print(f"preferences patches: {tried} on {BACKENDS}")
    assert tried["accepted"] > 10 and tried["refused"] > 10, tried


ARGUMENT_VALUES = (
    NUMBERS
    | TEXT
    | st.sampled_from([2**63, 2**64, -(2**63) - 1, 10**30, 100 * 366 * 86_400 + 1, 2**62])
    | st.text(alphabet="abc\x00\ud800", max_size=8)
)
TOOL_ARGUMENTS = {
    "items_save": ("id", "expected_version", "idempotency_key", "ttl_seconds"),
    "items_get": ("id",),
    "items_list": ("cursor", "page_size"),
    "items_delete": ("id", "expected_version", "idempotency_key"),
    "preferences_update": ("expected_version", "idempotency_key"),
}
BASE_ARGUMENTS: dict[str, dict[str, Any]] = {
    "items_save": {"data": {"a": 1}},
    "items_get": {"id": "x"},
    "items_list": {},
    "items_delete": {"id": "x"},
    "preferences_update": {"patch": {"a": 1}},
}


@pytest.mark.usefixtures("hypothesis_dir")
def test_every_argument_of_every_tool_out_of_range_or_malformed_is_refused_naming_it(
    platform: Platform,
) -> None:
    """Versions and TTLs past int64 or any date, ids, keys and cursors that are not text."""
    seen: set[str] = set()

    @reproducible(150)
    @given(
        tool=st.sampled_from(sorted(TOOL_ARGUMENTS)),
        data=st.data(),
        value=ARGUMENT_VALUES,
        tenant=st.sampled_from(BACKENDS),
    )
    def check(tool: str, data: st.DataObject, value: Any, tenant: str) -> None:
        name = data.draw(st.sampled_from(TOOL_ARGUMENTS[tool]))
        arguments = {**BASE_ARGUMENTS[tool], name: value}
        result = platform.call(tenant, platform.token(tenant), tool, arguments)
        if result.get("isError"):
            error = refusal(result)
            seen.add(error["code"])
            assert error["code"] in {"invalid_argument", "not_found", "conflict"}, error
            if error["code"] == "invalid_argument":
                assert error.get("field") == name, (arguments, error)

    check()
    platform.assert_no_traceback()
    assert "invalid_argument" in seen, seen


def test_each_case_of_the_report_is_refused_with_the_field_named(platform: Platform) -> None:
    cases: list[tuple[str, dict[str, Any], str]] = [
        # The field names where the nesting passes 64 levels (``data`` itself is the first).
        ("items_save", {"data": {"a": nested(300, "list")}}, "data.a" + "[0]" * 63),
        ("items_save", {"data": {"a": 1}, "expected_version": 2**64}, "expected_version"),
        ("items_save", {"data": {"a": 1}, "ttl_seconds": 2**64}, "ttl_seconds"),
        ("items_save", {"data": {"a": 1}, "ttl_seconds": 10**11}, "ttl_seconds"),
        ("items_save", {"id": "a\ud800", "data": {"a": 1}}, "id"),
        ("items_save", {"data": {"a": 1}, "idempotency_key": "k\ud800"}, "idempotency_key"),
        ("items_save", {"data": {"a\ud800": 1}}, "data"),
        ("items_save", {"data": {"a": "b\ud800"}}, "data.a"),
        ("items_save", {"data": {"a": [1, float("nan")]}}, "data.a[1]"),
        ("items_save", {"data": {"a": 2**64}}, "data.a"),
        ("items_delete", {"id": "x", "expected_version": 2**63}, "expected_version"),
        ("items_list", {"cursor": "c\ud800"}, "cursor"),
        # An unknown argument whose name is not valid Unicode: named, escaped.
        ("items_save", {"data": {"a": 1}, "x\ud800": 1}, "x\\ud800"),
        ("preferences_update", {"patch": {"p": nested(200, "dict")}}, "patch.p" + ".k" * 63),
    ]
    for tenant in BACKENDS:
        token = platform.token(tenant)
        for tool, arguments, field in cases:
            error = refusal(platform.call(tenant, token, tool, arguments))
            assert (error["code"], error.get("field")) == ("invalid_argument", field), (
                tenant,
                tool,
                error,
            )
    platform.assert_no_traceback()


def test_a_quota_refusal_names_the_quota_as_its_field(platform: Platform) -> None:
    for tenant in BACKENDS:
        big = {"text": "x" * (257 * 1024)}
        error = refusal(platform.call(tenant, platform.token(tenant), "items_save", {"data": big}))
        assert error["code"] == "quota_exceeded", error
        assert error["field"] == "quotas.maxObjectBytes", error


# --- data stored before the rule -----------------------------------------------------------


def _store_directly(worker: WorkerProcess, owner: str, object_id: str, data_json: str) -> None:
    """An object as a database from before the rule may hold it, written below the worker."""
    engine = database(worker)
    cast = "CAST(:data AS jsonb)" if engine.dialect.name == "postgresql" else ":data"
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO objects (owner, collection, object_id, data, schema_version, "
                "version, size_bytes, created_at, updated_at, expires_at, correlation_id) "
                f"VALUES (:owner, 'items', :id, {cast}, 1, 1, :size, "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, NULL, 'old')"
            ),
            {"owner": owner, "id": object_id, "data": data_json, "size": len(data_json)},
        )
    engine.dispose()


def test_deep_data_stored_before_the_rule_is_listed_exported_and_erased_per_object(
    platform: Platform,
) -> None:
    deep_json = json.dumps({"deep": nested(400, "list")}, separators=(",", ":"))
    for tenant in BACKENDS:
        token = platform.token(tenant)
        fine = structured(platform.call(tenant, token, "items_save", {"id": "a", "data": {"n": 1}}))
        usage = structured(platform.call(tenant, token, "my_data_export", {}))
        _store_directly(platform.workers[tenant], usage["user_id"], "b-deep", deep_json)

        error = refusal(platform.call(tenant, token, "items_get", {"id": "b-deep"}))
        assert error["code"] == "unreadable_data", error
        assert "deeper than 64" in error["message"], error

        page = structured(platform.call(tenant, token, "items_list", {}))
        assert [o["id"] for o in page["objects"]] == ["a"]
        assert [(u["id"], u["version"]) for u in page["unreadable"]] == [("b-deep", 1)]
        assert json.loads(page["unreadable"][0]["data_json"]) == json.loads(deep_json)

        export = structured(platform.call(tenant, token, "my_data_export", {}))
        assert [o["id"] for o in export["objects"]] == [fine["object"]["id"]]
        [kept] = export["unreadable_objects"]
        assert kept["id"] == "b-deep" and json.loads(kept["data_json"]) == json.loads(deep_json)

        erased = structured(platform.call(tenant, token, "my_data_erase", {"confirm": True}))
        assert erased["objects_deleted"] == 2
    platform.assert_no_traceback()
