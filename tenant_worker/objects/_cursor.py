"""Opaque list cursors, bound to one user and one collection."""

from __future__ import annotations

import base64
import hashlib
import json

from tenant_worker._errors import InvalidArgument


def _binding(owner: str, collection: str) -> str:
    return hashlib.sha256(f"{owner}\x00{collection}".encode()).hexdigest()[:24]


def encode(owner: str, collection: str, after_id: str) -> str:
    raw = json.dumps({"b": _binding(owner, collection), "a": after_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(cursor: str, owner: str, collection: str) -> str:
    """The id to continue after; InvalidArgument for a foreign or mangled cursor."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        body = json.loads(base64.urlsafe_b64decode(padded.encode()))
        binding, after = body["b"], body["a"]
    except (ValueError, KeyError, TypeError) as e:
        raise InvalidArgument("cursor", "not a cursor this service issued") from e
    if binding != _binding(owner, collection) or not isinstance(after, str):
        raise InvalidArgument("cursor", "belongs to another user or collection")
    return after
