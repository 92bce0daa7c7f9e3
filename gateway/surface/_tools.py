"""The tools a tenant's connector offers, built from its settings. No I/O here.

Every tenant gets the built-in tools (items, preferences, export and erasure of
the caller's data). Each collection it declares with a JSON Schema also gets
typed tools whose input and output schemas embed that schema, so the model
fills real fields instead of a free-form JSON blob.

The tools themselves are rows of a table (:mod:`gateway.surface._tool_table`); this
module fills in each collection's rows and builds the catalogue from them.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import mcp_types as types
from jsonschema import Draft202012Validator

from gateway._types import READ_SCOPE, WRITE_SCOPE, Tenant
from gateway.surface._components import Components, build_components
from gateway.surface._operations import Operation
from gateway.surface._tool_table import (
    BUILTIN_TOOLS,
    FILE_TOOLS,
    LINKED_FILES_ARG,
    NAME,
    OBJECT_TOOLS,
    SPACE_OBJECT_TOOLS,
    SPACE_TOOLS,
    Slot,
    ToolRow,
    object_schema,
)

log = logging.getLogger(__name__)

#: The schemaless collection the built-in object tools act on unless told another.
BUILTIN_COLLECTION = "items"


def _nouns(collection: str) -> tuple[str, str]:
    """("a note", "notes") for ``notes``: how titles name one object and the collection.

    Collection names are usually plural nouns; a name that is not (``cache``)
    serves as both.
    """
    words = collection.replace("_", " ")
    if words.endswith("ies"):
        one = words[:-3] + "y"
    elif words.endswith(("sses", "xes", "zes", "ches", "shes")):
        one = words[:-2]
    elif words.endswith("s") and not words.endswith("ss"):
        one = words[:-1]
    else:
        one = words
    article = "an" if one[:1] in ("a", "e", "i", "o", "u") else "a"
    return f"{article} {one}", words


def _embeddable(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A collection schema fit to embed as a property (no document-level keys)."""
    out = copy.deepcopy(dict(schema))
    for key in ("$schema", "$id"):
        out.pop(key, None)
    return out


@dataclass(frozen=True)
class ToolSpec:
    """One tool: what it does at the worker, the scope it needs, its wire form."""

    name: str
    #: What it does at the worker (:mod:`gateway.surface._operations`), and whether the caller's
    #: user id is gone afterwards (erasure).
    operation: Operation
    forgets_user: bool
    scope: str
    #: Fixed collection (typed tools); None: the ``collection`` argument, default items.
    collection: str | None
    definition: types.Tool
    validator: Draft202012Validator


def _fill(schema: Any, slots: Mapping[Slot, dict[str, Any]]) -> Any:
    """A fresh copy of ``schema`` with each :class:`Slot` replaced by its part."""
    if isinstance(schema, Slot):
        return slots[schema]
    if isinstance(schema, Mapping):
        return {key: _fill(value, slots) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_fill(value, slots) for value in schema]
    return schema


def _spec(row: ToolRow, collection: str | None) -> ToolSpec:
    """The tool a complete row describes (no templates or slots left in it)."""
    scope = READ_SCOPE if row.read_only else WRITE_SCOPE
    input_schema = {"additionalProperties": False, **_fill(row.input_schema, {}), "type": "object"}
    definition = types.Tool(
        name=row.name,
        title=row.title,
        description=row.description,
        input_schema=input_schema,
        output_schema=_fill(row.output_schema, {}),
        annotations=types.ToolAnnotations(
            title=row.title,
            read_only_hint=row.read_only,
            destructive_hint=row.destructive,
            idempotent_hint=row.idempotent,
            open_world_hint=False,
        ),
        _meta={"securitySchemes": [{"type": "oauth2", "scopes": [scope]}]},
    )
    validator = Draft202012Validator(input_schema)
    return ToolSpec(
        row.name, row.operation, row.forgets_user, scope, collection, definition, validator
    )


def _object_tools(
    prefix: str,
    data: Mapping[str, Any],
    collection: str | None,
    rows: tuple[ToolRow, ...] = OBJECT_TOOLS,
    files: bool = False,
) -> list[ToolSpec]:
    """The :data:`OBJECT_TOOLS` (or ``rows``) of one collection: ``collection``, or any (None).

    ``files``: the tenant stores files, so a save may name them (``LINKED_FILES_ARG``)."""
    pick = {} if collection else {"collection": {**NAME, "default": BUILTIN_COLLECTION}}
    one, many = _nouns(prefix)
    where = f"the {many} collection" if collection else "a schemaless collection (default: items)"
    words = {"one": one, "many": many, "where": where}
    slots = {Slot.DATA: dict(data), Slot.OBJECT: object_schema(data)}
    specs = []
    for row in rows:
        input_schema = _fill(row.input_schema, slots)
        input_schema["properties"] = {**pick, **input_schema["properties"]}
        if files and row.name == "save":
            input_schema["properties"]["files"] = dict(LINKED_FILES_ARG)
        filled = replace(
            row,
            name=f"{prefix}_{row.name}",
            title=row.title.format(**words),
            description=row.description.format(**words),
            input_schema=input_schema,
            output_schema=_fill(row.output_schema, slots),
        )
        specs.append(_spec(filled, collection))
    return specs


def _builtin_tools(files: bool) -> list[ToolSpec]:
    tools = _object_tools(BUILTIN_COLLECTION, {"type": "object"}, None, files=files)
    return tools + [_spec(row, None) for row in BUILTIN_TOOLS]


@dataclass(frozen=True)
class Catalogue:
    """The tools of one tenant, by name, the ``tools/list`` result, and its components."""

    tools: Mapping[str, ToolSpec]
    listing: types.ListToolsResult
    components: Components
    #: The ``tools/list`` result as JSON per protocol version, made on first use (the lane's).
    listing_json: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)

    def scope_for(self, name: str) -> str | None:
        spec = self.tools.get(name)
        return spec.scope if spec else None


def _linked(spec: ToolSpec, link: Mapping[str, Any] | None) -> ToolSpec:
    """``spec`` with the ``_meta`` that links it to a component, if it has one."""
    if link is None:
        return spec
    meta = {**(spec.definition.meta or {}), **link}
    return replace(spec, definition=spec.definition.model_copy(update={"meta": meta}))


def build_catalogue(tenant: Tenant) -> Catalogue:
    links_origin = tenant.origin if tenant.spec.files is not None else None
    components = build_components(tenant.spec.components, links_origin)
    files = tenant.spec.files is not None
    specs = _builtin_tools(files)
    shared = [c for c in tenant.collections if c.shared and c.name != BUILTIN_COLLECTION]
    for collection in shared:
        data = _embeddable(collection.schema or {"type": "object"})
        specs += _object_tools(collection.name, data, collection.name, SPACE_OBJECT_TOOLS, files)
    specs += [_spec(row, None) for row in SPACE_TOOLS] if shared else []
    specs += [_spec(row, None) for row in FILE_TOOLS] if tenant.spec.files is not None else []
    for collection in tenant.collections:
        if collection.schema is None or collection.name == BUILTIN_COLLECTION or collection.shared:
            continue
        specs += _object_tools(
            collection.name, _embeddable(collection.schema), collection.name, files=files
        )
    tools: dict[str, ToolSpec] = {}
    for spec in specs:
        if spec.name in tools:
            log.warning(
                "tool name taken; skipping the typed tool",
                extra={"tenant": tenant.name, "tool": spec.name},
            )
            continue
        tools[spec.name] = _linked(spec, components.tool_links.get(spec.name))
    listing = types.ListToolsResult(tools=[s.definition for s in tools.values()])
    return Catalogue(tools, listing, components)


class Catalogues:
    """Catalogues per tenant, rebuilt when the tenant's settings object changes."""

    def __init__(self) -> None:
        self._built: dict[str, tuple[Tenant, Catalogue]] = {}

    def of(self, tenant: Tenant) -> Catalogue:
        found = self._built.get(tenant.name)
        if found is not None and found[0] is tenant:
            return found[1]
        catalogue = build_catalogue(tenant)
        self._built[tenant.name] = (tenant, catalogue)
        return catalogue
