"""The tenants file read into one line per tenant, in a process of its own.

``python -m gateway.directory._tenant_entries FILE`` reads FILE (``json.loads`` when it
is JSON, else YAML) and writes one line per tenant to stdout::

    <digest> <JSON of [name, endpoint or null, instance or null, spec]>

The digest (hex, of the JSON) lets the gateway skip every tenant it has
already parsed: a change to one tenant of ten thousand is one line to decode.
A file that cannot be read, or whose shape is wrong, is one message on stderr
and exit status 2; nothing is written to stdout then.

Why a process: the parse of ten thousand tenants of YAML is seconds of
Python work, and a thread doing it holds the GIL the event loop needs (a
``/healthz`` took over a second meanwhile). Here the loop only reads lines.

Imports only the standard library and PyYAML, so it starts in a tenth of a
second; it knows nothing of the Tenant spec (:mod:`gateway.directory._tenant_file`
parses the entries). Garbage collection is off for its short life: its
objects form no cycles, and a collection pass over a growing heap is most of
what a large YAML parse costs otherwise.
"""

from __future__ import annotations

import gc
import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

#: The exit status of a file that was rejected (its message is on stderr).
REJECTED = 2

#: libyaml's loader when PyYAML was built with it (about 3x faster than the pure-Python one).
_YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Entry = tuple[str, object, object, Any]  # name, endpoint, instance (either may be absent), spec

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"


class EntryError(ValueError):
    """The file is not a tenants file; the message names the place."""


def read(path: Path) -> Any:
    """The file's document. JSON (a subset of YAML) takes the fast path."""
    text = path.read_text()
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            pass  # YAML flow style that is not JSON: read it as YAML below
    loader = _YAML_LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        try:
            return _build(node, loader, set())
        except Exception:  # whatever it was, the standard way reads it exactly
            return loader.construct_document(node)
    except yaml.YAMLError as e:
        raise EntryError(f"{path}: not valid YAML: {e}") from e
    finally:
        loader.dispose()  # type: ignore[no-untyped-call]


class _Recursive(Exception):
    """A node that contains itself (an alias to an enclosing anchor)."""


def _build(node: Node, loader: yaml.SafeLoader, enclosing: set[int]) -> Any:
    """What ``yaml.safe_load`` makes of ``node``, in a third of its time.

    Strings, mappings (without merge keys) and sequences are built here; every
    other node (numbers, booleans, tagged values, merges) by the loader itself.
    Raises on anything unusual (a recursive alias, an unhashable key), and then
    the caller builds the whole document the standard way instead.
    """
    if isinstance(node, ScalarNode):
        return node.value if node.tag == _STR else loader.construct_object(node, deep=True)
    if id(node) in enclosing:
        raise _Recursive
    if isinstance(node, MappingNode) and node.tag == _MAP:
        if any(key.tag == _MERGE for key, _ in node.value):
            return loader.construct_object(node, deep=True)
        enclosing.add(id(node))
        mapping = {
            _build(k, loader, enclosing): _build(v, loader, enclosing) for k, v in node.value
        }
        enclosing.discard(id(node))
        return mapping
    if isinstance(node, SequenceNode) and node.tag == _SEQ:
        enclosing.add(id(node))
        sequence = [_build(item, loader, enclosing) for item in node.value]
        enclosing.discard(id(node))
        return sequence
    return loader.construct_object(node, deep=True)


def entries(raw: Any) -> Iterator[Entry]:
    """``{tenants: [{name, ...}]}`` or ``{tenants: {name: spec}}``, one entry per tenant."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise EntryError("expected a mapping with a 'tenants' key")
    items = raw.get("tenants") or []
    if isinstance(items, dict):
        items = [{"name": name, **(spec or {})} for name, spec in items.items()]
    if not isinstance(items, list):
        raise EntryError("tenants: expected a list or a mapping")
    seen: set[str] = set()
    for i, item in enumerate(items):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name:
            raise EntryError(f"tenants[{i}].name: required")
        if name in seen:
            raise EntryError(f"tenants[{i}].name: {name!r} appears twice")
        seen.add(name)
        yield name, item.get("endpoint"), item.get("instance"), item.get("spec", item)


def write_lines(raw: Any, out: BinaryIO) -> None:
    """One ``<digest> <json>`` line per entry; all of them checked before the first is written."""
    lines = []
    for entry in entries(raw):
        # default=str: a YAML date or timestamp becomes its text, as in the Tenant resource.
        data = json.dumps(entry, separators=(",", ":"), default=str).encode()
        lines.append(hashlib.blake2b(data, digest_size=16).hexdigest().encode() + b" " + data)
    out.write(b"\n".join(lines))
    if lines:
        out.write(b"\n")


def main(argv: list[str]) -> int:
    gc.disable()
    if len(argv) != 1:
        print("usage: python -m gateway.directory._tenant_entries FILE", file=sys.stderr)
        return REJECTED
    path = Path(argv[0])
    try:
        write_lines(read(path), sys.stdout.buffer)
    except EntryError as e:
        print(e, file=sys.stderr)
        return REJECTED
    except (OSError, ValueError) as e:  # unreadable, not UTF-8, a YAML alias cycle
        print(f"{path}: {e}", file=sys.stderr)
        return REJECTED
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
