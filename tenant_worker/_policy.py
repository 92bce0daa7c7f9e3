"""A tenant's rules: quotas, retention and collections with their schemas.

Plain values parsed from the policy file (the Tenant spec's shape). No I/O
here except ``load_policy``, which reads one file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from tenant_worker._errors import InvalidArgument, NotFound

#: The schemaless collection every tenant has.
BUILTIN_COLLECTION = "items"
COLLECTION_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

_QUANTITY = re.compile(r"^([0-9]+)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_UNITS = {
    None: 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


class PolicyError(ValueError):
    """The policy file is not valid; the message names the field."""


def parse_quantity(value: object, where: str) -> int:
    """A Kubernetes-style byte quantity (``256Ki``, ``10Gi``) or an integer."""
    if isinstance(value, bool):
        raise PolicyError(f"{where}: expected a quantity, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise PolicyError(f"{where}: must not be negative")
        return value
    m = _QUANTITY.match(str(value).strip())
    if not m:
        raise PolicyError(f"{where}: {value!r} is not a quantity like 256Ki or 10Gi")
    return int(m.group(1)) * _UNITS[m.group(2)]


@dataclass(frozen=True)
class Quotas:
    max_objects: int = 1_000_000
    max_bytes: int = 10 * 2**30
    max_object_bytes: int = 256 * 2**10


@dataclass(frozen=True)
class UpgradeStep:
    """Turns data at ``from_version`` into data at ``from_version + 1``."""

    from_version: int
    rename: Mapping[str, str] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    set: Mapping[str, Any] = field(default_factory=dict)
    remove: tuple[str, ...] = ()

    def apply(self, data: dict[str, Any]) -> dict[str, Any]:
        out = dict(data)
        for old, new in self.rename.items():
            if old in out:
                out[new] = out.pop(old)
        for key, value in self.defaults.items():
            out.setdefault(key, value)
        out.update(self.set)
        for key in self.remove:
            out.pop(key, None)
        return out


@dataclass(frozen=True)
class Collection:
    name: str
    schema_version: int = 1
    schema: Mapping[str, Any] | None = None
    upgrades: tuple[UpgradeStep, ...] = ()
    _validator: Draft202012Validator | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.schema is not None:
            object.__setattr__(self, "_validator", Draft202012Validator(dict(self.schema)))

    def validate(self, data: Any) -> None:
        """Raise InvalidArgument naming the first offending field path."""
        if not isinstance(data, dict):
            raise InvalidArgument("data", "must be a JSON object")
        if self._validator is None:
            return
        errors = sorted(self._validator.iter_errors(data), key=lambda e: [str(p) for p in e.path])
        error = errors[0] if errors else None
        if error is None:
            return
        path = "data" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.path)
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = [r for r in error.validator_value if r not in error.instance]
            if missing:
                path += f".{missing[0]}"
        raise InvalidArgument(path, error.message)

    def upgrade(self, data: dict[str, Any], from_version: int) -> dict[str, Any]:
        """Data stored at ``from_version``, brought to the current version."""
        by_version = {s.from_version: s for s in self.upgrades}
        version = from_version
        while version < self.schema_version:
            step = by_version.get(version)
            if step is not None:
                data = step.apply(data)
            version += 1
        return data


@dataclass(frozen=True)
class TenantPolicy:
    quotas: Quotas = Quotas()
    #: Days objects are kept after their last write; None keeps them.
    default_retention_days: int | None = None
    retention_days: Mapping[str, int] = field(default_factory=dict)
    collections: Mapping[str, Collection] = field(default_factory=dict)

    def collection(self, name: str) -> Collection:
        """The named collection; NOT_FOUND for one the tenant does not have."""
        found = self.collections.get(name)
        if found is not None:
            return found
        if name == BUILTIN_COLLECTION or name in self.retention_days:
            return Collection(name=name)
        if not COLLECTION_NAME.match(name):
            raise InvalidArgument("collection", "must match [a-z][a-z0-9_]{0,62}")
        raise NotFound(f"unknown collection {name!r}")

    def retention(self, collection: str) -> timedelta | None:
        days = self.retention_days.get(collection, self.default_retention_days)
        return None if days is None else timedelta(days=days)


def parse_policy(raw: Mapping[str, Any] | None) -> TenantPolicy:
    """Build a policy from the Tenant spec's shape; PolicyError names the field."""
    raw = raw or {}
    q = raw.get("quotas") or {}
    defaults = Quotas()
    quotas = Quotas(
        max_objects=parse_quantity(q.get("maxObjects", defaults.max_objects), "quotas.maxObjects"),
        max_bytes=parse_quantity(q.get("maxBytes", defaults.max_bytes), "quotas.maxBytes"),
        max_object_bytes=parse_quantity(
            q.get("maxObjectBytes", defaults.max_object_bytes), "quotas.maxObjectBytes"
        ),
    )
    r = raw.get("retention") or {}
    default_days = r.get("defaultDays")
    if default_days is not None and (not isinstance(default_days, int) or default_days < 1):
        raise PolicyError("retention.defaultDays: must be a positive integer")
    per: dict[str, int] = {}
    for name, days in (r.get("collections") or {}).items():
        if not isinstance(days, int) or isinstance(days, bool) or days < 1:
            raise PolicyError(f"retention.collections.{name}: must be a positive integer")
        if not COLLECTION_NAME.match(name):
            raise PolicyError(f"retention.collections.{name}: not a valid collection name")
        per[name] = days
    collections: dict[str, Collection] = {}
    for i, c in enumerate(raw.get("collections") or []):
        where = f"collections[{i}]"
        name = c.get("name")
        if not isinstance(name, str) or not COLLECTION_NAME.match(name):
            raise PolicyError(f"{where}.name: must match [a-z][a-z0-9_]{{0,62}}")
        version = c.get("schemaVersion", 1)
        if not isinstance(version, int) or version < 1:
            raise PolicyError(f"{where}.schemaVersion: must be a positive integer")
        schema = c.get("schema")
        if schema is not None:
            try:
                Draft202012Validator.check_schema(schema)
            except SchemaError as e:
                raise PolicyError(f"{where}.schema: {e.message}") from e
        steps = []
        for j, u in enumerate(c.get("upgrades") or []):
            frm = u.get("fromVersion")
            if not isinstance(frm, int) or not 1 <= frm < version:
                raise PolicyError(
                    f"{where}.upgrades[{j}].fromVersion: must be between 1 and {version - 1}"
                )
            steps.append(
                UpgradeStep(
                    from_version=frm,
                    rename=dict(u.get("rename") or {}),
                    defaults=dict(u.get("defaults") or {}),
                    set=dict(u.get("set") or {}),
                    remove=tuple(u.get("remove") or ()),
                )
            )
        collections[name] = Collection(name, version, schema, tuple(steps))
    return TenantPolicy(quotas, default_days, per, collections)


def load_policy(path: Path | None) -> TenantPolicy:
    if path is None:
        return TenantPolicy()
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise PolicyError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise PolicyError(f"{path}: expected a mapping at the top level")
    return parse_policy(raw)
