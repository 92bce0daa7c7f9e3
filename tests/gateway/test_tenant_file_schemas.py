"""Collection schemas in a tenants file: checked at load, shared by content, quick when plain.

A tenants file of many tenants that each declare their own JSON Schema loads
without running the full meta-schema check for every plain schema; an
invalid one still rejects the file at load, naming the field; equal schemas
are one object however many tenants declare them. The first read may start
before the event loop (``read_ahead``) without missing a change made meanwhile.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from gateway._errors import TenantConfigError
from gateway._types import Tenant, TenantName
from gateway.directory._tenant_file import FileTenantSource, TenantFile
from stowage._schema_check import _CHECKS, CONSTRAINED, plainly_valid

_CHECKED = frozenset(_CHECKS)


def tenant(name: str, schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "endpoint": "127.0.0.1:1",
        "auth": {"issuer": "https://login.example.com/", "audience": f"https://mcp/t/{name}"},
        "collections": [{"name": "notes", "schema": schema}],
    }


def own_schema(i: int) -> dict[str, Any]:
    """A schema of one tenant's own: no two tenants' are equal."""
    return {
        "type": "object",
        "title": f"Notes of tenant {i}",
        "properties": {
            f"title{i}": {"type": "string", "maxLength": 200},
            "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
            "rating": {"type": ["integer", "null"], "minimum": 0, "maximum": 5},
        },
        "required": [f"title{i}"],
        "additionalProperties": False,
    }


def read(path: Path, tenants: list[dict[str, Any]]) -> dict[str, Any]:
    path.write_text(json.dumps({"tenants": tenants}))
    loaded, _ = anyio.run(TenantFile(path).read)
    return dict(loaded)


def test_tenants_with_schemas_of_their_own_load_each_with_its_schema(tmp_path: Path) -> None:
    loaded = read(tmp_path / "tenants.json", [tenant(f"t{i}", own_schema(i)) for i in range(50)])
    assert len(loaded) == 50
    for i in range(50):
        [collection] = loaded[f"t{i}"].spec.collections
        assert collection.schema == own_schema(i)


@pytest.mark.parametrize(
    ("schema", "field", "says"),
    [
        ({"type": "objekt"}, "schema.type", "is not valid under any of the given schemas"),
        (
            {"type": "object", "properties": {"n": {"type": "integer", "minimum": "0"}}},
            "schema.properties.n.minimum",
            "'0' is not of type 'number'",
        ),
        ({"type": "string", "pattern": "(unclosed"}, "schema.pattern", "is not a 'regex'"),
        ({"required": ["a", "a"]}, "schema.required", "has non-unique elements"),
    ],
)
def test_an_invalid_schema_rejects_the_file_at_load_naming_the_field(
    tmp_path: Path, schema: dict[str, Any], field: str, says: str
) -> None:
    tenants = [tenant(f"t{i}", own_schema(i)) for i in range(5)] + [tenant("bad", schema)]
    with pytest.raises(TenantConfigError) as refused:
        read(tmp_path / "tenants.json", tenants)
    message = str(refused.value)
    assert message.startswith(f"tenants.bad.collections[0].{field}: not a valid JSON Schema"), (
        message
    )
    assert says in message


def test_tenants_declaring_equal_schemas_share_one_object(tmp_path: Path) -> None:
    schema = own_schema(0)
    reordered = dict(reversed(list(schema.items())))  # equal, written in another order
    loaded = read(
        tmp_path / "tenants.json",
        [tenant("a", schema), tenant("b", reordered), tenant("c", own_schema(1))],
    )
    assert loaded["a"].spec.collections is loaded["b"].spec.collections
    assert loaded["a"].spec.collections is not loaded["c"].spec.collections


def test_the_quick_check_knows_every_keyword_the_meta_schema_constrains() -> None:
    from jsonschema_specifications import REGISTRY

    constrained: set[str] = set()
    for uri in REGISTRY:
        if uri.startswith("https://json-schema.org/draft/2020-12/"):
            constrained |= set(REGISTRY.contents(uri).get("properties", {}))
    assert constrained == CONSTRAINED


# Per keyword, values it allows and values just beside them (wrong bound, type or shape).
_TYPES = ["string", "object", "integer", "number", "array", "boolean", "null", "objekt"]
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-2, 3)
    | st.floats(-1, 2, allow_nan=False)
    | st.sampled_from([*_TYPES, "", "(", "^a+$", "#/$defs/x", "a"])
)
_names = st.sampled_from(["a", "b", "c"])
_required = st.lists(_names, max_size=3) | st.lists(st.integers(0, 1), max_size=2)


def _value(keyword: str, inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Values for ``keyword``: mostly of its kind, now and then any scalar."""
    near: dict[str, st.SearchStrategy[Any]] = {
        "schema": inner,
        "schemas": st.lists(inner, max_size=2),
        "by_name": st.dictionaries(_names, inner, max_size=2),
        "type": st.sampled_from(_TYPES) | st.lists(st.sampled_from(_TYPES), max_size=3),
        "count": st.integers(-2, 5) | st.floats(0, 3, allow_nan=False),
        "number": st.integers(-2, 3) | st.floats(-1, 2, allow_nan=False),
        "required": _required,
        "required_by_name": st.dictionaries(_names, _required, max_size=2),
        "string": st.text(max_size=3),
        "boolean": st.booleans() | st.integers(0, 1),
        "array": st.lists(_scalars, max_size=2),
        "any": _scalars | st.lists(_scalars, max_size=2),
    }
    kind = near[_KIND.get(keyword, "any")]
    return st.one_of(kind, kind, kind, _scalars)


_KIND = {
    **dict.fromkeys(["properties", "$defs", "definitions", "dependentSchemas"], "by_name"),
    **dict.fromkeys(["prefixItems", "allOf", "anyOf", "oneOf"], "schemas"),
    **dict.fromkeys(
        ["items", "contains", "additionalProperties", "propertyNames", "if", "then", "else",
         "not", "unevaluatedItems", "unevaluatedProperties", "contentSchema"],
        "schema",
    ),
    **dict.fromkeys(
        ["maxLength", "minLength", "maxItems", "minItems", "maxContains", "minContains",
         "maxProperties", "minProperties"],
        "count",
    ),
    **dict.fromkeys(
        ["maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum", "multipleOf"], "number"
    ),
    **dict.fromkeys(["uniqueItems", "deprecated", "readOnly", "writeOnly"], "boolean"),
    **dict.fromkeys(
        ["title", "description", "$comment", "format", "contentEncoding", "contentMediaType"],
        "string",
    ),
    **dict.fromkeys(["enum", "examples"], "array"),
    "type": "type",
    "required": "required",
    "dependentRequired": "required_by_name",
}  # fmt: skip
# Mostly the keywords the quick check decides, now and then one it leaves to the meta-schema.
_KEYWORDS = [*sorted(_CHECKED) * 4, *sorted(CONSTRAINED - _CHECKED), "x-ext"]


def _schemas(depth: int) -> st.SearchStrategy[Any]:
    inner = st.booleans() if depth == 0 else _schemas(depth - 1)
    return st.lists(st.sampled_from(_KEYWORDS), unique=True, max_size=3).flatmap(
        lambda keywords: st.fixed_dictionaries({k: _value(k, inner) for k in keywords})
    )


def test_a_schema_the_quick_check_accepts_is_one_the_meta_schema_accepts(tmp_path: Path) -> None:
    set_hypothesis_home_dir(tmp_path / "hypothesis")

    @settings(max_examples=3000, deadline=None, database=None)
    @given(schema=_schemas(2))
    def agrees(schema: Any) -> None:
        if plainly_valid(schema):
            try:
                Draft202012Validator.check_schema(schema)
            except SchemaError as e:  # pragma: no cover - the failure being looked for
                pytest.fail(f"accepted {schema!r}, which the meta-schema refuses: {e.message}")

    try:
        agrees()
    finally:
        set_hypothesis_home_dir(None)


def test_plain_schemas_take_the_quick_check() -> None:
    assert plainly_valid(own_schema(7))
    assert plainly_valid({"type": "object", "x-order": ["a"], "properties": {"a": True}})
    # Left to the meta-schema: references, patterns, integers written as floats.
    assert not plainly_valid({"$ref": "#/$defs/a"})
    assert not plainly_valid({"type": "string", "pattern": "^a$"})
    assert not plainly_valid({"type": "string", "maxLength": 3.0})


# --- the first read, started before the event loop ---------------------------------------


def test_a_read_started_ahead_is_published_and_a_change_made_meanwhile_is_read_after(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tenants.json"
    path.write_text(json.dumps({"tenants": [tenant("a", own_schema(0))]}))
    source = FileTenantSource(path, interval=0.02)
    source.read_ahead()
    # The helper has read the file before it changes: the change must still be seen.
    started = source._started  # the helper read_ahead started
    assert started is not None
    started.process.wait()
    later = [tenant("a", own_schema(0)), tenant("b", own_schema(1))]
    path.write_text(json.dumps({"tenants": later}))
    published: list[set[str]] = []

    async def watch_until_b() -> None:
        both = anyio.Event()

        def publish(tenants: Mapping[TenantName, Tenant]) -> None:
            published.append(set(tenants))
            if "b" in tenants:
                both.set()

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(source.watch, publish)
                await both.wait()
                tg.cancel_scope.cancel()

    anyio.run(watch_until_b)
    assert published == [{"a"}, {"a", "b"}]


def test_a_file_rejected_by_the_read_started_ahead_publishes_no_tenants(tmp_path: Path) -> None:
    path = tmp_path / "tenants.json"
    path.write_text(json.dumps({"tenants": [tenant("bad", {"type": "objekt"})]}))
    source = FileTenantSource(path, interval=0.02)
    source.read_ahead()
    published: list[set[str]] = []

    async def first() -> None:
        done = anyio.Event()

        def publish(tenants: Mapping[TenantName, Tenant]) -> None:
            published.append(set(tenants))
            done.set()

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(source.watch, publish)
                await done.wait()
                tg.cancel_scope.cancel()

    anyio.run(first)
    assert published == [set()]
