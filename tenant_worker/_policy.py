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

from stowage import tenant_spec
from stowage.tenant_spec import (
    BUILTIN_COLLECTION,
    COLLECTION_NAME,
    Quotas,
    SpecError,
    TenantSpec,
    Upgrade,
    parse_tenant_spec,
)
from stowage.wire import field_path
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
    """A collection of the spec as the worker enforces it: its schema compiled, once."""

    spec: tenant_spec.Collection
    _validator: Draft202012Validator | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.spec.schema is not None:
            object.__setattr__(self, "_validator", Draft202012Validator(dict(self.spec.schema)))

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def schema_version(self) -> int:
        return self.spec.schema_version

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
        parts: list[str | int] = ["data", *error.path]
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = [r for r in error.validator_value if r not in error.instance]
            parts += missing[:1]
        raise InvalidArgument(field_path(parts), error.message)

    def upgrade(self, data: dict[str, Any], from_version: int) -> dict[str, Any]:
        """Data stored at ``from_version``, brought to the current version."""
        by_version = {s.from_version: s for s in self.spec.upgrades}
        version = from_version
        while version < self.schema_version:
            step = by_version.get(version)
            if step is not None:
                data = apply_upgrade(step, data)
            version += 1
        return data


@dataclass(frozen=True)
class TenantPolicy:
    """The tenant's spec as the shared parser gives it, and its collections compiled.

    The worker reads the spec's own fields (``policy.spec.retention``, …), never
    copies of them: a field the parser adds reaches the worker as it is.
    """

    spec: TenantSpec = field(default_factory=TenantSpec)
    #: The declared collections by name, compiled from ``spec.collections``.
    collections: Mapping[str, Collection] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        compiled = {c.name: Collection(c) for c in self.spec.collections}
        object.__setattr__(self, "collections", compiled)

    @property
    def quotas(self) -> Quotas:
        return self.spec.quotas

    def collection(self, name: str) -> Collection:
        """The named collection; NOT_FOUND for one the tenant does not have."""
        found = self.collections.get(name)
        if found is not None:
            return found
        if name == BUILTIN_COLLECTION or name in self.spec.retention.collections:
            return Collection(tenant_spec.Collection(name=name))
        if not COLLECTION_NAME.match(name):
            raise InvalidArgument("collection", "must match [a-z][a-z0-9_]{0,62}")
        raise NotFound(f"unknown collection {name!r}")

    def personal(self, name: str) -> Collection:
        """The named collection for a user's own objects; a shared one lives in spaces."""
        found = self.collection(name)
        if found.spec.shared:
            raise InvalidArgument(
                "collection",
                f"{name} is shared: its objects live in spaces; use its tools with a space",
            )
        return found

    def retention(self, collection: str) -> timedelta | None:
        days = self.spec.retention.collections.get(collection, self.spec.retention.default_days)
        return None if days is None else timedelta(days=days)


def parse_policy(raw: Mapping[str, Any] | None) -> TenantPolicy:
    """Build a policy from the Tenant spec's shape; PolicyError names the field."""
    return TenantPolicy(parse_tenant_spec(raw, where=""))


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
