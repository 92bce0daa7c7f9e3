"""The link keys: one per tenant derived from the gateway's master key, a rotation that keeps
the links already handed out working for their lifetime only, and no key at all refused
with ``files_unavailable``. The gateway rereads its keys directory at each use, as it does
when the kubelet updates the chart's mounted Secret."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest

from gateway._errors import LinksUnavailable
from gateway.files import CURRENT_KEY, PREVIOUS_KEY, ROTATED_AT, SigningKeys, tenant_key
from gateway.files._signing import Grant, Method, query
from tests.files.conftest import Platform

pytestmark = [pytest.mark.anyio]


@contextmanager
def rotated(platform: Platform) -> Iterator[bytes]:
    """Rotate the master key as the chart does (new current, old one previous, the time);
    the new master key. Put back afterwards."""
    keys = platform.keys_dir
    old = (keys / CURRENT_KEY).read_bytes()
    new = secrets.token_hex(32).encode()
    (keys / PREVIOUS_KEY).write_bytes(old)
    (keys / ROTATED_AT).write_text(str(int(time.time())))
    (keys / CURRENT_KEY).write_bytes(new)
    try:
        yield new
    finally:
        (keys / CURRENT_KEY).write_bytes(old)
        (keys / PREVIOUS_KEY).unlink()
        (keys / ROTATED_AT).unlink()


def _signed_url(platform: Platform, key: bytes, grant: Grant) -> str:
    return f"{platform.gateway.base}/t/{grant.tenant}/files/{grant.file_id}?" + urlencode(
        query(key, grant)
    )


def test_each_tenant_gets_its_own_key_and_none_is_the_master() -> None:
    master = secrets.token_hex(32).encode()
    keys = {tenant_key(master, t) for t in ("acme", "tight", "acme2")}
    assert len(keys) == 3 and master not in keys
    assert tenant_key(master, "acme") == tenant_key(master, "acme")
    assert tenant_key(secrets.token_hex(32).encode(), "acme") != tenant_key(master, "acme")


async def test_links_handed_out_before_a_rotation_keep_working_and_new_ones_use_the_new_key(
    platform: Platform, user: str
) -> None:
    data = b"rotation" * 100
    before = await platform.upload_link(user, data)
    with rotated(platform) as new_master:
        after = await platform.upload_link(user, data)
        async with httpx.AsyncClient(timeout=30) as http:
            assert (await http.put(before["upload"]["url"], content=data)).status_code == 200
            assert (await http.put(after["upload"]["url"], content=data)).status_code == 200
        signed = dict(parse_qsl(urlsplit(after["upload"]["url"]).query))["s"]
        grant = Grant(
            "acme", signed_user(after), after["file"]["id"], Method.PUT,
            int(signed_expiry(after)), len(data),
        )  # fmt: skip
        assert query(tenant_key(new_master, "acme"), grant)["s"] == signed


async def test_after_a_rotation_the_old_key_signs_nothing_that_outlives_the_window(
    platform: Platform, user: str
) -> None:
    data = b"forged"
    created = await platform.upload_link(user, data)
    old_key = platform.tenant_key("acme")
    with rotated(platform):
        # A link the old key could have signed before the rotation: accepted.
        soon = Grant("acme", signed_user(created), created["file"]["id"], Method.PUT,
                     int(time.time()) + 600, len(data))  # fmt: skip
        # One that expires later than any link signed before the rotation can: refused.
        later = Grant("acme", soon.user, soon.file_id, Method.PUT, int(time.time()) + 7200, 6)
        async with httpx.AsyncClient(timeout=30) as http:
            refused = await http.put(_signed_url(platform, old_key, later), content=data)
            accepted = await http.put(_signed_url(platform, old_key, soon), content=data)
    assert refused.status_code == 403 and refused.json()["error"] == "invalid_signature"
    assert accepted.status_code == 200, accepted.text


async def test_without_a_master_key_the_files_tools_and_links_say_files_unavailable(
    platform: Platform, user: str
) -> None:
    created = await platform.upload_link(user, b"x")
    current = platform.keys_dir / CURRENT_KEY
    kept = current.read_bytes()
    current.unlink()
    try:
        result = await platform.tool(
            user, "files_create_upload", {"name": "a.txt", "content_type": "text/plain", "size": 1}
        )
        async with httpx.AsyncClient(timeout=30) as http:
            link = await http.put(created["upload"]["url"], content=b"x")
    finally:
        current.write_bytes(kept)
    assert result.is_error and "files_unavailable" in result.content[0].text  # type: ignore[union-attr]
    assert link.status_code == 503 and link.json()["error"] == "files_unavailable"
    assert "master key" in link.json()["message"]
    assert str(platform.keys_dir) not in link.json()["message"]  # no server path to the public


def test_a_gateway_without_a_keys_directory_refuses_to_sign_and_says_which_flag() -> None:
    with pytest.raises(LinksUnavailable, match="--files-keys-dir"):
        SigningKeys(None).signing("acme")


def signed_user(created: dict[str, object]) -> str:
    upload = created["upload"]
    assert isinstance(upload, dict)
    return dict(parse_qsl(urlsplit(upload["url"]).query))["u"]


def signed_expiry(created: dict[str, object]) -> str:
    upload = created["upload"]
    assert isinstance(upload, dict)
    return dict(parse_qsl(urlsplit(upload["url"]).query))["e"]
