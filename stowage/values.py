"""What a stored value and a tool argument may hold: the one rule both sides enforce. No I/O here.

Whatever the worker accepts it must be able to give back: in a get, a list, an
export and a backup, through every encoder on the way out (the worker's JSON,
protobuf, PostgreSQL's ``jsonb``, SQLite, the MCP SDK's serialiser, a JavaScript
client). So a JSON value is refused, with the path of the offending part, when
it holds:

- objects and arrays nested deeper than :data:`MAX_DEPTH` levels (the SDK's
  serialiser gives up a few hundred levels down, after the value is stored);
- a number that is not finite (``NaN``, ``Infinity``) or whose magnitude is
  :data:`MAX_SAFE_INTEGER` + 1 or more: beyond it a JavaScript client loses
  digits, and PostgreSQL's ``jsonb`` gives a large float back as an integer
  (RFC 7493, I-JSON, draws the same line);
- a string or object key that is not a sequence of Unicode scalar values (a
  lone UTF-16 surrogate such as ``"\\ud800"``) or that holds U+0000, which
  PostgreSQL cannot store in text or ``jsonb``.

The gateway checks every tool argument with :func:`find_problem` before it calls
the worker; the worker, the authority, checks what it parses again. The integer
arguments that travel as protobuf ``int64`` have their own bounds here too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from stowage.wire import field_path

#: The deepest nesting of objects and arrays a value may have (the value itself is level 1).
MAX_DEPTH = 64
#: The largest magnitude a JSON number may have: 2**53 - 1.
MAX_SAFE_INTEGER = 2**53 - 1
#: ``expected_version`` and other versions travel as protobuf ``int64``.
MAX_VERSION = 2**63 - 1
#: The longest time to live an object may ask for: 100 years, far from any date overflow.
MAX_TTL_SECONDS = 100 * 366 * 86_400

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """Why a value cannot be accepted, and where in it (a path from the value's root)."""

    path: Path
    message: str

    def field(self, *prefix: str | int) -> str:
        """The path as a tool error's ``field`` names it, e.g. ``data.tags[1]``."""
        return field_path((*prefix, *self.path))


def string_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None: a lone surrogate or U+0000."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "holds a lone UTF-16 surrogate; send valid Unicode text"
    if "\x00" in text:
        return "holds the character U+0000, which cannot be stored"
    return None


def _number_problem(number: int | float) -> str | None:
    if isinstance(number, float) and not math.isfinite(number):
        return "must be a finite number (NaN and Infinity are not JSON)"
    if abs(number) > MAX_SAFE_INTEGER:
        return (
            f"is too large: numbers must lie within ±{MAX_SAFE_INTEGER} (2^53 - 1); "
            "store larger values as strings"
        )
    return None


def find_problem(value: object, path: Path = (), depth: int = 1) -> Problem | None:
    """The first part of ``value`` (parsed JSON) that breaks the rule, or None.

    Objects are walked in their keys' order, so the problem named is stable.
    """
    if isinstance(value, str):
        message = string_problem(value)
        return Problem(path, message) if message else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        message = _number_problem(value)
        return Problem(path, message) if message else None
    if isinstance(value, dict | list):
        if depth > MAX_DEPTH:
            return Problem(path, f"nests deeper than {MAX_DEPTH} levels of objects and arrays")
        return _container_problem(value, path, depth)
    return Problem(path, f"is not a JSON value ({type(value).__name__})")


def _container_problem(
    value: dict[object, object] | list[object], path: Path, depth: int
) -> Problem | None:
    if isinstance(value, list):
        for index, item in enumerate(value):
            if (found := find_problem(item, (*path, index), depth + 1)) is not None:
                return found
        return None
    for key, item in value.items():
        if not isinstance(key, str):
            return Problem(path, "has a key that is not a string")
        if (message := string_problem(key)) is not None:
            return Problem(path, f"has a key that {message}")
        if (found := find_problem(item, (*path, key), depth + 1)) is not None:
            return found
    return None


def depth_over_limit(value: object) -> bool:
    """Whether ``value`` nests deeper than :data:`MAX_DEPTH` (what no serialiser may meet)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Sequence[object] = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


__all__ = [
    "MAX_DEPTH",
    "MAX_SAFE_INTEGER",
    "MAX_TTL_SECONDS",
    "MAX_VERSION",
    "Problem",
    "depth_over_limit",
    "find_problem",
    "string_problem",
]
