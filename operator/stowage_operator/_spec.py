"""What the API server's schema cannot check about a Tenant, and the worker's policy document.

No I/O here. The CRD refuses most invalid Tenants (bounds, CEL rules); what is
left (a collection schema that is not a valid JSON Schema, an upgrade listed
twice) is found by the shared parser (:mod:`stowage.tenant_spec`) and reported
in a condition.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stowage.tenant_spec import SpecError, TenantSpec, parse_tenant_spec
from stowage_operator._errors import PermanentError


class InvalidSpec(PermanentError):
    reason = "InvalidSpec"


def parsed(spec: Mapping[str, Any]) -> TenantSpec:
    """The spec as every component reads it (the shared parser); InvalidSpec names the field.

    The operator reads its own parts (``worker``, ``backup``) from this value too,
    never around the parser. Its collections are shared by content, so parsing
    the same spec again is cheap.
    """
    try:
        return parse_tenant_spec(spec, where="spec")
    except SpecError as e:
        raise InvalidSpec(str(e)) from e


def validate(spec: Mapping[str, Any]) -> None:
    """Raise InvalidSpec naming the first field a component would refuse.

    The same parser the gateway and the worker use, so a Tenant the operator
    accepts is one every component serves.
    """
    parsed(spec)


def policy_document(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The worker's policy file: the whole Tenant spec, which the worker reads with the
    shared parser. Nothing is picked out, so no field can be left behind on the way."""
    return dict(spec)
