"""Opaque cursors of a space: an object list's (after an id) and the change feed's (after a seq)."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from tenant_worker._errors import InvalidArgument


def _binding(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:24]


def _encode(body: dict[str, Any]) -> str:
    raw = json.dumps(body, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str, binding: str) -> Any:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        body = json.loads(base64.urlsafe_b64decode(padded.encode()))
        found, after = body["b"], body["a"]
    except (ValueError, KeyError, TypeError) as e:
        raise InvalidArgument("cursor", "not a cursor this service issued") from e
    if found != binding:
        raise InvalidArgument("cursor", "belongs to another space or collection")
    return after


def encode_list(space: str, collection: str, after_id: str) -> str:
    return _encode({"b": _binding("list", space, collection), "a": after_id})


def decode_list(cursor: str, space: str, collection: str) -> str:
    after = _decode(cursor, _binding("list", space, collection))
    if not isinstance(after, str):
        raise InvalidArgument("cursor", "not a cursor this service issued")
    return after


def encode_feed(space: str, after_seq: int) -> str:
    return _encode({"b": _binding("feed", space), "a": after_seq})


def decode_feed(cursor: str, space: str) -> int:
    """The change number to continue after; 0 for an empty cursor (from the first change)."""
    if not cursor:
        return 0
    after = _decode(cursor, _binding("feed", space))
    if not isinstance(after, int) or isinstance(after, bool) or after < 0:
        raise InvalidArgument("cursor", "not a cursor this service issued")
    return after
