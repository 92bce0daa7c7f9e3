"""Fuzzing the gateway's HTTP surface with hypothesis, against the real running gateway.

Malformed JSON-RPC, wrong types, huge numbers, deep nesting, wrong content
types and methods, unknown methods and tools, arbitrary tool arguments: every
answer is a 4xx or a 2xx (the one documented 5xx is 503 ``temporarily_unavailable``
with ``Retry-After`` while a starting gateway loads its tenants), no answer
carries a traceback, and the gateway is up and logged no traceback afterwards.

Runs are reproducible and bounded: ``derandomize=True`` (the same examples on
every machine), no example database written into the repository, and a fixed
number of examples per property.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stowage_testing.gateway import MCP_HEADERS, GatewayProcess, Issuer, post, rpc, tool_error
from stowage_testing.properties import hypothesis_home, reproducible

pytestmark = pytest.mark.postgres


#: Bounded and reproducible: the same examples on every machine, nothing kept.
fuzz = reproducible


TRACEBACK_MARKERS = ("Traceback (most recent call last)", 'File "/', "Exception in ASGI")
#: The only 5xx the gateway documents (see gateway/gate/_gate.py).
DOCUMENTED_5XX = {503: "temporarily_unavailable"}

# --- strategies ------------------------------------------------------------------

HUGE_INTEGERS = st.integers(min_value=2**63 - 2, max_value=10**40) | st.integers(
    min_value=-(10**40), max_value=-(2**63) + 2
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | HUGE_INTEGERS
    | st.floats()  # with NaN and ±Infinity, which json.dumps writes as non-standard tokens
    | st.text(max_size=40)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=16,
)
KNOWN_METHODS = [
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "sampling/createMessage",
    "notifications/initialized",
    "notifications/cancelled",
]
TOOLS = [
    "items_save",
    "items_get",
    "items_list",
    "items_delete",
    "preferences_get",
    "preferences_update",
    "my_data_export",
    "my_data_erase",
    "notes_save",
    "notes_get",
    "notes_list",
    "notes_delete",
]
METHODS = st.sampled_from(KNOWN_METHODS) | st.text(max_size=30)
IDS = st.integers(0, 10**6) | HUGE_INTEGERS | st.text(max_size=20) | st.none() | JSON_VALUES
ARGUMENT_NAMES = [
    "id",
    "data",
    "collection",
    "expected_version",
    "idempotency_key",
    "ttl_seconds",
    "page_size",
    "cursor",
    "patch",
    "confirm",
]
#: Tool arguments: an object with the tools' own argument names (and others), any values.
ARGUMENTS = st.dictionaries(
    st.sampled_from(ARGUMENT_NAMES) | st.text(max_size=12),
    JSON_VALUES | HUGE_INTEGERS | st.sampled_from(["fuzz", "items", "notes", "", "x" * 300]),
    max_size=5,
)
TOOL_PARAMS = st.fixed_dictionaries(
    {"name": st.sampled_from(TOOLS) | st.text(max_size=20)},
    optional={"arguments": ARGUMENTS | JSON_VALUES, "_meta": JSON_VALUES},
)
#: A well-formed envelope: known or unknown methods, parameters right or wrong.
ENVELOPES = st.fixed_dictionaries(
    {
        "jsonrpc": st.just("2.0"),
        "id": st.integers(0, 10**6) | st.text(max_size=20),
        "method": METHODS,
    },
    optional={
        "params": TOOL_PARAMS | st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=3)
    },
)
#: Anything in the envelope's fields: wrong versions, ids of every type, no method.
WILD = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.sampled_from(["1.0", 2.0, 2]) | JSON_VALUES,
        "id": IDS,
        "method": METHODS | JSON_VALUES,
        "params": TOOL_PARAMS | JSON_VALUES,
        "result": JSON_VALUES,
    },
)
MESSAGES = ENVELOPES | WILD


def nested(depth: int, kind: str) -> str:
    return "[" * depth + "]" * depth if kind == "list" else '{"a":' * depth + "1" + "}" * depth


DEEP = st.builds(
    nested, st.integers(min_value=1, max_value=60_000), st.sampled_from(["list", "dict"])
)
HUGE_NUMBER_TEXT = st.sampled_from(
    ["1" + "0" * 5000, "-" + "9" * 4400, "1e999999", "-1e-999999", "1.5e308", "0." + "1" * 6000]
)
# Text to put where a JSON value goes: deep nesting, huge numbers, or a plain value.
RAW_VALUES = DEEP | HUGE_NUMBER_TEXT | JSON_VALUES.map(json.dumps)


def tool_call_with(raw_arguments: str, tool: str, id_text: str) -> bytes:
    return (
        f'{{"jsonrpc":"2.0","id":{id_text},"method":"tools/call",'
        f'"params":{{"name":{json.dumps(tool)},"arguments":{{"id":"fuzz","data":{raw_arguments},'
        f'"expected_version":{raw_arguments}}}}}}}'
    ).encode()


MALFORMED_BODIES = (
    st.binary(max_size=200)
    | st.text(max_size=200).map(str.encode)
    | MESSAGES.map(json.dumps).flatmap(
        lambda text: st.integers(0, max(0, len(text) - 1)).map(lambda cut: text[:cut].encode())
    )
    | st.builds(tool_call_with, RAW_VALUES, st.sampled_from(TOOLS), HUGE_NUMBER_TEXT | DEEP)
    | DEEP.map(str.encode)
    | st.lists(MESSAGES, max_size=3).map(lambda batch: json.dumps(batch).encode())
)
CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-16",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
        "",
    ]
) | st.text(max_size=30).filter(lambda t: t.isprintable() and t.isascii())
ACCEPTS = st.sampled_from(
    ["application/json, text/event-stream", "application/json", "text/event-stream", "*/*", ""]
)
HTTP_METHODS = st.just("POST") | st.sampled_from(
    ["GET", "DELETE", "PUT", "PATCH", "OPTIONS", "HEAD"]
)

# --- checks ----------------------------------------------------------------------


def assert_sound(response: httpx.Response) -> None:
    """A 2xx-4xx or a documented 5xx, and nothing in the answer that leaks a traceback."""
    text = response.text
    where = f"{response.request.method} → {response.status_code}: {text[:300]!r}"
    if response.status_code >= 500:
        assert response.status_code in DOCUMENTED_5XX, where
        assert response.json()["error"] == DOCUMENTED_5XX[response.status_code], where
        assert "retry-after" in response.headers, where
    for marker in TRACEBACK_MARKERS:
        assert marker not in text, where
        assert all(marker not in v for v in response.headers.values()), where
    if text and "json" in response.headers.get("content-type", ""):
        json.loads(text)  # whatever the gateway calls JSON parses as JSON


class Fuzzer:
    """Sends fuzzed requests to tenant acme, each as a fresh user (own rate-limit bucket)."""

    def __init__(self, gateway: GatewayProcess, issuer: Issuer, client: httpx.Client) -> None:
        self.gateway, self.issuer, self.client = gateway, issuer, client
        self.url = gateway.url("acme")
        self.log_offset = len(gateway.logs())

    def token(self) -> str:
        return self.issuer.token(self.url, subject=f"fuzz-{uuid.uuid4().hex[:12]}")

    def send(self, body: bytes, method: str = "POST", **headers: str) -> httpx.Response:
        all_headers = {**MCP_HEADERS, "authorization": f"Bearer {self.token()}", **headers}
        response = self.client.request(method, self.url, content=body, headers=all_headers)
        assert_sound(response)
        return response

    def assert_still_up(self) -> None:
        assert self.gateway.alive()
        assert httpx.get(f"{self.gateway.base}/healthz", timeout=10).status_code == 200
        answer = post(self.url, rpc("tools/list"), self.token())
        assert answer.status_code == 200 and answer.json()["result"]["tools"]
        logged = self.gateway.logs()[self.log_offset :]
        for marker in TRACEBACK_MARKERS:
            assert marker not in logged, logged[logged.find(marker) - 2000 :][:4000]


@pytest.fixture
def fuzzer(gateway: GatewayProcess, issuer: Issuer, tmp_path: Path) -> Iterator[Fuzzer]:
    # Hypothesis caches what it learns under .hypothesis/ of the working directory: keep
    # that out of the repository (and there is no example database: database=None).
    with hypothesis_home(tmp_path), httpx.Client(timeout=10) as client:
        yield Fuzzer(gateway, issuer, client)


# --- properties --------------------------------------------------------------------


def test_any_json_rpc_message_or_batch_gets_an_answer_without_a_server_error(
    fuzzer: Fuzzer,
) -> None:
    @fuzz(120)
    @given(body=MESSAGES | st.lists(MESSAGES, min_size=1, max_size=3))
    def check(body: Any) -> None:
        response = fuzzer.send(json.dumps(body).encode())
        assert response.status_code < 500

    check()
    fuzzer.assert_still_up()


def test_tool_calls_with_arbitrary_arguments_get_a_tool_result_or_a_json_rpc_error(
    fuzzer: Fuzzer,
) -> None:
    @fuzz(100)
    @given(tool=st.sampled_from(TOOLS), arguments=ARGUMENTS, id=st.integers(0, 2**31))
    def check(tool: str, arguments: Any, id: int) -> None:
        body = rpc("tools/call", {"name": tool, "arguments": arguments}, id=id)
        response = fuzzer.send(json.dumps(body).encode())
        assert response.status_code == 200, response.text[:300]
        answer = response.json()
        assert answer["id"] == id and ("result" in answer) != ("error" in answer), answer
        if "result" in answer and answer["result"].get("isError"):
            error = tool_error(answer["result"])["error"]
            assert error["code"] in {"invalid_argument", "not_found", "conflict"}, error

    check()
    fuzzer.assert_still_up()


def test_malformed_bodies_huge_numbers_and_deep_nesting_get_a_client_error_or_an_answer(
    fuzzer: Fuzzer,
) -> None:
    @fuzz(120)
    @given(body=MALFORMED_BODIES)
    def check(body: bytes) -> None:
        response = fuzzer.send(body)
        assert response.status_code < 500

    check()
    fuzzer.assert_still_up()


def test_wrong_methods_content_types_and_accept_headers_get_a_client_error_or_an_answer(
    fuzzer: Fuzzer,
) -> None:
    @fuzz(80)
    @given(
        method=HTTP_METHODS,
        content_type=CONTENT_TYPES,
        accept=ACCEPTS,
        version=st.sampled_from(["2025-11-25", "2025-06-18", "1999-01-01", "", "x" * 200]),
        body=MESSAGES.map(json.dumps).map(str.encode) | MALFORMED_BODIES,
    )
    def check(method: str, content_type: str, accept: str, version: str, body: bytes) -> None:
        response = fuzzer.send(
            body,
            method,
            **{"content-type": content_type, "accept": accept, "mcp-protocol-version": version},
        )
        assert response.status_code < 500

    check()
    fuzzer.assert_still_up()


def test_a_get_is_refused_with_405_instead_of_holding_an_empty_stream_open(
    fuzzer: Fuzzer,
) -> None:
    for accept in ("text/event-stream", "application/json, text/event-stream", "*/*"):
        response = fuzzer.send(b"", "GET", accept=accept)
        assert response.status_code == 405 and response.headers["allow"] == "POST"
    unauthenticated = httpx.get(fuzzer.url, headers={"accept": "text/event-stream"}, timeout=10)
    assert unauthenticated.status_code == 401  # discovery starts with the challenge, as for POST
