"""The tool-call lane answers a plain ``tools/call``; everything else still gets the SDK's answer.

Run against the real gateway process over HTTP: the lane's replies are read
as raw JSON-RPC, and each request the lane must leave alone (a refused Host or
Origin, a wrong Accept or Content-Type, malformed params, a batch, a 2026-era
protocol version) gets what the MCP SDK's transport answers.
"""

from __future__ import annotations

import uuid

import pytest

from stowage_testing.gateway import GatewayProcess, Issuer, post, rpc, tool_error

pytestmark = pytest.mark.postgres


@pytest.fixture
def token(gateway: GatewayProcess, issuer: Issuer) -> str:
    return issuer.token(gateway.url("acme"), subject=f"lane-{uuid.uuid4().hex[:8]}")


def save(object_id: str, id: int | str = 1) -> dict[str, object]:
    return rpc("tools/call", {"name": "items_save", "arguments": {"id": object_id, "data": {}}}, id)


def test_a_plain_tool_call_gets_a_json_rpc_result_with_its_id_and_correlation_id(
    gateway: GatewayProcess, token: str
) -> None:
    saved = post(gateway.url("acme"), save("lane-1", id="call-7"), token)
    assert saved.status_code == 200
    assert saved.headers["content-type"] == "application/json"
    assert len(saved.headers["x-request-id"]) == 32
    body = saved.json()
    assert body["jsonrpc"] == "2.0" and body["id"] == "call-7"
    assert body["result"]["structuredContent"]["object"]["version"] == 1
    assert body["result"]["isError"] is False

    got = post(gateway.url("acme"), rpc("tools/call", {"name": "items_get"}, id=8), token)
    assert got.status_code == 200 and got.json()["id"] == 8
    assert tool_error(got.json()["result"])["error"]["code"] == "invalid_argument"


def test_a_protocol_version_absent_is_served_as_the_sdk_default(
    gateway: GatewayProcess, token: str
) -> None:
    answer = post(gateway.url("acme"), save("lane-2"), token, **{"mcp-protocol-version": ""})
    # An empty header is a version the SDK does not know: not the lane's to answer.
    assert answer.status_code == 400
    assert "error" in answer.json()


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"host": "evil.example"}, 421),
        ({"origin": "https://evil.example"}, 403),
        ({"accept": "text/html"}, 406),
        ({"content-type": "text/plain"}, 400),
    ],
    ids=["host", "origin", "accept", "content-type"],
)
def test_requests_the_sdk_refuses_are_refused_as_before(
    gateway: GatewayProcess, token: str, headers: dict[str, str], status: int
) -> None:
    answer = post(gateway.url("acme"), save("lane-3"), token, **headers)
    assert answer.status_code == status


def test_malformed_tool_call_params_get_the_sdk_invalid_params_error(
    gateway: GatewayProcess, token: str
) -> None:
    answer = post(gateway.url("acme"), rpc("tools/call", {"arguments": {}}, id=3), token)
    assert answer.status_code == 200
    body = answer.json()
    assert body["id"] == 3 and body["error"]["code"] == -32602


def test_a_boolean_id_is_not_served_as_a_call(gateway: GatewayProcess, token: str) -> None:
    answer = post(gateway.url("acme"), {**save("lane-4"), "id": True}, token)
    # JSON-RPC ids are strings or numbers: the SDK takes this for a notification.
    assert answer.status_code == 202 and not answer.content
    got = post(
        gateway.url("acme"),
        rpc("tools/call", {"name": "items_get", "arguments": {"id": "lane-4"}}),
        token,
    )
    assert tool_error(got.json()["result"])["error"]["code"] == "not_found"


def test_a_2026_era_request_keeps_the_sdk_single_exchange_path(
    gateway: GatewayProcess, token: str
) -> None:
    answer = post(
        gateway.url("acme"), save("lane-5"), token, **{"mcp-protocol-version": "2026-07-28"}
    )
    body = answer.json()
    # The 2026 envelope (clientInfo, capabilities in _meta) is missing: the SDK says so.
    assert "result" not in body and body["error"]["code"] < 0


def test_a_plain_tools_list_gets_the_same_result_as_the_sdk_gives_a_listing_with_params(
    gateway: GatewayProcess, token: str
) -> None:
    # No params: the lane's answer, made once per catalogue. With params (here an empty
    # _meta), the SDK's own. The two must be the same listing, byte for byte once parsed.
    lane = post(gateway.url("acme"), rpc("tools/list", id=11), token)
    again = post(gateway.url("acme"), rpc("tools/list", id="twelve"), token)
    sdk = post(gateway.url("acme"), rpc("tools/list", {"_meta": {}}, id=13), token)
    for answer in (lane, again, sdk):
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/json"
    assert lane.json()["id"] == 11 and again.json()["id"] == "twelve" and sdk.json()["id"] == 13
    assert lane.json()["result"] == sdk.json()["result"]
    assert again.json()["result"] == lane.json()["result"]
    names = {t["name"] for t in lane.json()["result"]["tools"]}
    assert {"items_save", "notes_get", "my_data_erase"} <= names
