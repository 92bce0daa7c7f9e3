"""What the API server's schema cannot check about a Tenant, and the worker's policy document.

No I/O here. The CRD refuses most invalid Tenants (bounds, CEL rules); what is
left (a collection schema that is not a valid JSON Schema, an upgrade listed
twice) is found by the shared parser (:mod:`stowage.tenant_spec`) and reported
in a condition.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stowage.tenant_spec import SpecError, parse_tenant_spec
from stowage_operator._errors import PermanentError

#: The parts of a Tenant spec the worker reads from its policy file.
POLICY_FIELDS = ("retention", "quotas", "collections")


class InvalidSpec(PermanentError):
    reason = "InvalidSpec"


def validate(spec: Mapping[str, Any]) -> None:
    """Raise InvalidSpec naming the first field a component would refuse.

    The same parser the gateway and the worker use, so a Tenant the operator
    accepts is one every component serves.
    """
    try:
        parse_tenant_spec(spec, where="spec")
    except SpecError as e:
        raise InvalidSpec(str(e)) from e


def policy_document(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The worker's policy file: the Tenant spec's retention, quotas and collections."""
    return {key: spec[key] for key in POLICY_FIELDS if spec.get(key) is not None}
