"""A small object that a collection's JSON Schema accepts. No I/O here.

The check writes to the collections a tenant declares without knowing their
fields in advance: it builds the smallest plausible instance (required fields
only, each at its minimum) and keeps it only if the schema accepts it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

#: How deep nested required objects are followed before giving up.
_MAX_DEPTH = 8


class NoSample(ValueError):
    """No instance could be built that the schema accepts; the message says why."""


def _first_type(schema: Mapping[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        non_null = [k for k in kind if k != "null"]
        return str(non_null[0]) if non_null else "null"
    return str(kind) if isinstance(kind, str) else None


def _string(schema: Mapping[str, Any]) -> str:
    length = max(int(schema.get("minLength", 0)), len("dogfood"))
    max_length = schema.get("maxLength")
    if isinstance(max_length, int):
        length = min(length, max_length)
    return ("dogfood" * (length // 7 + 1))[:length]


def _number(schema: Mapping[str, Any], integer: bool) -> int | float:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    if low is None:
        return 0
    value = low + (1 if "exclusiveMinimum" in schema and "minimum" not in schema else 0)
    return int(value) if integer else value


def _build(schema: Any, depth: int) -> Any:
    if not isinstance(schema, Mapping):
        return {}
    if depth > _MAX_DEPTH:
        raise NoSample("nested required objects too deep")
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return _build(schema[key][0], depth + 1)
    if "$ref" in schema:
        raise NoSample("the schema uses $ref")
    match _first_type(schema):
        case "object" | None:
            properties = schema.get("properties") or {}
            return {
                name: _build(properties.get(name, {}), depth + 1)
                for name in schema.get("required") or ()
            }
        case "string":
            return _string(schema)
        case "integer":
            return _number(schema, integer=True)
        case "number":
            return _number(schema, integer=False)
        case "boolean":
            return False
        case "array":
            count = int(schema.get("minItems", 0))
            return [_build(schema.get("items") or {}, depth + 1) for _ in range(count)]
        case "null":
            return None
        case other:
            raise NoSample(f"unknown type {other!r}")


def sample_object(schema: Mapping[str, Any]) -> dict[str, Any]:
    """An object ``schema`` accepts, or NoSample saying why none was found."""
    try:
        validator = Draft202012Validator(dict(schema))
        validator.check_schema(dict(schema))
    except SchemaError as e:
        raise NoSample(f"not a valid JSON Schema: {e.message}") from e
    candidate = _build(schema, 0)
    if not isinstance(candidate, dict):
        raise NoSample("the schema does not describe an object")
    error = next(iter(validator.iter_errors(candidate)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "the object"
        raise NoSample(f"the smallest guess is refused at {where}: {error.message}")
    return candidate
