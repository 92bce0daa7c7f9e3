"""What the API server's schema cannot check about a Tenant, and the worker's policy document.

No I/O here. The CRD refuses most invalid Tenants (bounds, CEL rules); what is
left — a collection schema that is not a valid JSON Schema, a retention rule
for an undeclared collection name — is found here and reported in a condition.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from stowage_operator._errors import PermanentError

#: The parts of a Tenant spec the worker reads from its policy file.
POLICY_FIELDS = ("retention", "quotas", "collections")


class InvalidSpec(PermanentError):
    reason = "InvalidSpec"


def validate(spec: Mapping[str, Any]) -> None:
    """Raise InvalidSpec naming the first field the worker would refuse."""
    for i, collection in enumerate(spec.get("collections") or []):
        where = f"spec.collections[{i}]"
        schema = collection.get("schema")
        if schema is not None:
            try:
                Draft202012Validator.check_schema(schema)
            except SchemaError as e:
                path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.path)
                raise InvalidSpec(
                    f"{where}.schema{path}: not a valid JSON Schema: {e.message}"
                ) from e
        seen: set[int] = set()
        for j, upgrade in enumerate(collection.get("upgrades") or []):
            version = upgrade.get("fromVersion")
            if version in seen:
                raise InvalidSpec(f"{where}.upgrades[{j}].fromVersion: {version} appears twice")
            seen.add(version)


def policy_document(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The worker's policy file: the Tenant spec's retention, quotas and collections."""
    return {key: spec[key] for key in POLICY_FIELDS if spec.get(key) is not None}
