"""A quick check that a collection's JSON Schema is plainly valid, before the full one.

``jsonschema``'s check of a schema against the Draft 2020-12 meta-schema costs
about a millisecond (its ``$dynamicRef`` resolution, mostly): ten thousand
tenants that each declare their own schema spend ten seconds there. Most
schemas use a handful of keywords with plain values (``type``, ``properties``,
``required``, ``items``, lengths and bounds, ``enum``, titles and
descriptions), and for those the meta-schema's verdict is easy to see.

:func:`plainly_valid` says True only for a schema whose every keyword the
meta-schema constrains is one it checks here, with a value that keyword
plainly allows; a keyword the meta-schema leaves free (an extension such as
``x-order``) may hold anything, as there. Anything else (``$ref``,
``pattern``, a float where an integer belongs, a deep nesting) is False: not
"invalid", but "ask the meta-schema", whose error message then names the
problem. So True never accepts a schema the meta-schema refuses; a test holds
the two side by side.

No I/O here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

#: Every keyword the Draft 2020-12 meta-schema (with its vocabularies) constrains.
CONSTRAINED = frozenset(
    {
        "$anchor", "$comment", "$defs", "$dynamicAnchor", "$dynamicRef", "$id",
        "$recursiveAnchor", "$recursiveRef", "$ref", "$schema", "$vocabulary",
        "additionalProperties", "allOf", "anyOf", "const", "contains", "contentEncoding",
        "contentMediaType", "contentSchema", "default", "definitions", "dependencies",
        "dependentRequired", "dependentSchemas", "deprecated", "description", "else", "enum",
        "examples", "exclusiveMaximum", "exclusiveMinimum", "format", "if", "items",
        "maxContains", "maxItems", "maxLength", "maxProperties", "maximum", "minContains",
        "minItems", "minLength", "minProperties", "minimum", "multipleOf", "not", "oneOf",
        "pattern", "patternProperties", "prefixItems", "properties", "propertyNames", "readOnly",
        "required", "then", "title", "type", "unevaluatedItems", "unevaluatedProperties",
        "uniqueItems", "writeOnly",
    }
)  # fmt: skip

#: Deeper schemas are left to the meta-schema.
MAX_DEPTH = 32

_SIMPLE_TYPES = frozenset({"array", "boolean", "integer", "null", "number", "object", "string"})

Check = Callable[[Any, int], bool]


def _schema(value: Any, depth: int) -> bool:
    if value is True or value is False:
        return True
    if not isinstance(value, Mapping) or depth > MAX_DEPTH:
        return False
    for key, item in value.items():
        check = _CHECKS.get(key)
        if check is None:
            if key in CONSTRAINED:
                return False
            continue  # a keyword the meta-schema leaves free
        if not check(item, depth + 1):
            return False
    return True


def _schemas_by_name(value: Any, depth: int) -> bool:
    return isinstance(value, Mapping) and all(
        isinstance(k, str) and _schema(v, depth) for k, v in value.items()
    )


def _schema_list(value: Any, depth: int) -> bool:
    return isinstance(value, list) and bool(value) and all(_schema(v, depth) for v in value)


def _type(value: Any, _: int) -> bool:
    if isinstance(value, str):
        return value in _SIMPLE_TYPES
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, str) and v in _SIMPLE_TYPES for v in value)
        and len(set(value)) == len(value)
    )


def _number(value: Any, _: int) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _positive_number(value: Any, depth: int) -> bool:
    return _number(value, depth) and value > 0


def _count(value: Any, _: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _string(value: Any, _: int) -> bool:
    return isinstance(value, str)


def _boolean(value: Any, _: int) -> bool:
    return value is True or value is False


def _array(value: Any, _: int) -> bool:
    return isinstance(value, list)


def _anything(value: Any, _: int) -> bool:
    return True


def _unique_strings(value: Any, _: int) -> bool:
    return (
        isinstance(value, list)
        and all(isinstance(v, str) for v in value)
        and len(set(value)) == len(value)
    )


def _unique_strings_by_name(value: Any, depth: int) -> bool:
    return isinstance(value, Mapping) and all(
        isinstance(k, str) and _unique_strings(v, depth) for k, v in value.items()
    )


_CHECKS: dict[str, Check] = {
    **dict.fromkeys(("properties", "$defs", "definitions", "dependentSchemas"), _schemas_by_name),
    **dict.fromkeys(
        (
            "items",
            "contains",
            "additionalProperties",
            "propertyNames",
            "if",
            "then",
            "else",
            "not",
            "unevaluatedItems",
            "unevaluatedProperties",
            "contentSchema",
        ),
        _schema,
    ),
    **dict.fromkeys(("prefixItems", "allOf", "anyOf", "oneOf"), _schema_list),
    "type": _type,
    **dict.fromkeys(("enum", "examples"), _array),
    **dict.fromkeys(("const", "default"), _anything),
    "multipleOf": _positive_number,
    **dict.fromkeys(("maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum"), _number),
    **dict.fromkeys(
        (
            "maxLength",
            "minLength",
            "maxItems",
            "minItems",
            "maxContains",
            "minContains",
            "maxProperties",
            "minProperties",
        ),
        _count,
    ),
    **dict.fromkeys(("uniqueItems", "deprecated", "readOnly", "writeOnly"), _boolean),
    "required": _unique_strings,
    "dependentRequired": _unique_strings_by_name,
    **dict.fromkeys(
        ("title", "description", "$comment", "format", "contentEncoding", "contentMediaType"),
        _string,
    ),
}


def plainly_valid(schema: Any) -> bool:
    """True: the Draft 2020-12 meta-schema accepts ``schema``. False: ask the meta-schema."""
    return _schema(schema, 0)


__all__ = ["CONSTRAINED", "plainly_valid"]
