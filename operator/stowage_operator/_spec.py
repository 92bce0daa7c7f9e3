"""What the API server's schema cannot check about a Tenant, and the worker's policy document.

No I/O here. The CRD refuses most invalid Tenants (bounds, CEL rules); what is
left (a collection schema that is not a valid JSON Schema, an upgrade listed
twice, a component's HTML from an undeclared origin) is found by the shared
parser (:mod:`stowage.tenant_spec`) and reported in a condition. The HTML of a
component held in a ConfigMap (``htmlFrom``) is checked the same way, from the
ConfigMaps the caller read (:func:`bundle_names` says which).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from stowage import apps
from stowage.apps import ConfigMapKeyRef
from stowage.tenant_spec import ComponentNotFound as _Missing
from stowage.tenant_spec import SpecError, TenantSpec, parse_tenant_spec, resolve_components
from stowage_operator._errors import PermanentError, TemporaryError

#: The ConfigMaps a Tenant's components name, by name (None: it does not exist).
Bundles = Mapping[str, Mapping[str, Any] | None]


class InvalidSpec(PermanentError):
    reason = "InvalidSpec"


class ComponentNotFound(TemporaryError):
    """A component's ConfigMap or key is missing (or unlabelled): it may appear, so retried."""

    reason = "ComponentNotFound"

    def __init__(self, message: str) -> None:
        super().__init__(message, delay=10)


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


def bundle_names(spec: Mapping[str, Any]) -> frozenset[str]:
    """The ConfigMaps (in the Tenant's namespace) the spec's components take their HTML from."""
    return frozenset(c.html_from.name for c in parsed(spec).components if c.html_from is not None)


def _reader(namespace: str, bundles: Bundles) -> Callable[[ConfigMapKeyRef], str]:
    def read(ref: ConfigMapKeyRef) -> str:
        found = bundles.get(ref.name)
        if found is None:
            raise LookupError(f"ConfigMap {namespace}/{ref.name} not found")
        labels = (found.get("metadata") or {}).get("labels") or {}
        if labels.get(apps.BUNDLE_LABEL) != "true":
            raise LookupError(
                f"ConfigMap {namespace}/{ref.name} lacks the label {apps.BUNDLE_SELECTOR} "
                "(the gateway reads only labelled ConfigMaps)"
            )
        data = found.get("data") or {}
        if ref.key not in data:
            raise LookupError(f"ConfigMap {namespace}/{ref.name} has no key {ref.key!r} in data")
        return str(data[ref.key])

    return read


def validate(spec: Mapping[str, Any], namespace: str = "", bundles: Bundles | None = None) -> None:
    """Raise InvalidSpec naming the first field a component would refuse, or
    ComponentNotFound for a component's missing ConfigMap: with ``bundles`` (the
    ConfigMaps of :func:`bundle_names`, read by the caller from ``namespace``),
    the HTML they hold is checked too.

    The same parser and checks the gateway and the worker use, so a Tenant the
    operator accepts is one every component serves.
    """
    tenant = parsed(spec)
    if bundles is None:  # the spec alone: its components' ConfigMaps are checked apart
        return
    _, problems = resolve_components(tenant, _reader(namespace, bundles))
    if not problems:
        return
    first = problems[0]
    if isinstance(first, _Missing):
        raise ComponentNotFound(str(first)) from first
    raise InvalidSpec(str(first)) from first


def policy_document(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The worker's policy file: the whole Tenant spec, which the worker reads with the
    shared parser. Nothing is picked out, so no field can be left behind on the way."""
    return dict(spec)
