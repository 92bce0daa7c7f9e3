"""A tenant's rules: quotas, retention and collections with their schemas.

The policy file has the Tenant spec's shape and is read by the one shared
parser (:mod:`stowage.tenant_spec`); this module adds what enforcing it needs
(compiled schemas, upgrades). No I/O here except ``load_policy``, which reads
one file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from stowage.tenant_spec import (
    BUILTIN_COLLECTION,
    COLLECTION_NAME,
    Quotas,
    SpecError,
    TenantSpec,
    Upgrade,
    parse_tenant_spec,
)
from tenant_worker._errors import InvalidArgument, NotFound

#: A policy file that does not parse; the message names the field.
PolicyError = SpecError


def apply_upgrade(step: Upgrade, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` at ``step.from_version`` brought to the next version."""
    out = dict(data)
    for old, new in step.rename.items():
        if old in out:
            out[new] = out.pop(old)
    for key, value in step.defaults.items():
        out.setdefault(key, value)
    out.update(step.set)
    for key in step.remove:
        out.pop(key, None)
    return out


@dataclass(frozen=True)
class Collection:
    """A collection as the worker enforces it: its schema compiled, its upgrades ready."""

    name: str
    schema_version: int = 1
    schema: Mapping[str, Any] | None = None
    upgrades: tuple[Upgrade, ...] = ()
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
                data = apply_upgrade(step, data)
            version += 1
        return data


@dataclass(frozen=True)
class TenantPolicy:
    quotas: Quotas = field(default_factory=Quotas)
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

    @classmethod
    def from_spec(cls, spec: TenantSpec) -> TenantPolicy:
        return cls(
            quotas=spec.quotas,
            default_retention_days=spec.retention.default_days,
            retention_days=dict(spec.retention.collections),
            collections={
                c.name: Collection(c.name, c.schema_version, c.schema, c.upgrades)
                for c in spec.collections
            },
        )


def parse_policy(raw: Mapping[str, Any] | None) -> TenantPolicy:
    """Build a policy from the Tenant spec's shape; PolicyError names the field."""
    return TenantPolicy.from_spec(parse_tenant_spec(raw, where=""))


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


__all__ = [
    "BUILTIN_COLLECTION",
    "Collection",
    "PolicyError",
    "Quotas",
    "TenantPolicy",
    "apply_upgrade",
    "load_policy",
    "parse_policy",
]
