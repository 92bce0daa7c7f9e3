"""JSON helpers: one canonical encoding (for sizes and hashes) and merge patch."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from stowage.values import find_problem
from tenant_worker._errors import InvalidArgument


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode()


def loads_object(raw: bytes, field: str) -> dict[str, Any]:
    """Parse a JSON object, or InvalidArgument naming ``field``.

    What it holds is checked against the rule by :func:`check_value`.
    """
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InvalidArgument(field, f"not valid UTF-8 JSON ({e})") from e
    except (ValueError, RecursionError) as e:
        # Python's own limits: an integer of thousands of digits, nesting past the stack.
        raise InvalidArgument(field, f"not JSON this service can store ({e})") from e
    if not isinstance(value, dict):
        raise InvalidArgument(field, "must be a JSON object")
    return value


def check_value(value: Any, field: str) -> None:
    """InvalidArgument naming the part of ``value`` (the tool argument ``field``) that breaks
    the rule of :mod:`stowage.values`: too deep, a number out of range, an unstorable string."""
    problem = find_problem(value)
    if problem is not None:
        raise InvalidArgument(problem.field(field), problem.message)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: objects merge recursively, null removes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def request_hash(*parts: object) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else repr(part).encode())
        h.update(b"\x00")
    return h.hexdigest()
