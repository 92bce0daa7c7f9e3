"""One Tenant spec parser: its defaults and checks, and every component reading it alike."""

from __future__ import annotations

from typing import Any

import pytest
from stowage_operator._spec import InvalidSpec, validate

from gateway._errors import TenantConfigError
from gateway.directory._tenant_file import parse_tenant
from stowage.tenant_spec import (
    Quotas,
    Rate,
    SecretRef,
    SpecError,
    Stage,
    parse_quantity,
    parse_tenant_spec,
)
from tenant_worker._policy import PolicyError, parse_policy

AUTH = {"issuer": "https://login.example.com/", "audience": "https://mcp.example.com/t/a/mcp"}
NOTES = {"name": "notes", "schemaVersion": 2, "schema": {"type": "object"}}


def test_an_empty_spec_has_the_documented_defaults() -> None:
    spec = parse_tenant_spec({})
    assert spec.auth is None
    assert spec.rate_limits.per_user == Rate(120, 30)
    assert spec.rate_limits.per_tenant == Rate(6000, 600)
    assert spec.quotas == Quotas(1_000_000, 10 * 2**30, 256 * 2**10)
    assert spec.retention.default_days is None and spec.collections == ()


def test_a_full_spec_is_read_into_values() -> None:
    spec = parse_tenant_spec(
        {
            "auth": {**AUTH, "jwksUri": "https://login.example.com/jwks"},
            "rateLimits": {"perUser": {"requestsPerMinute": 60, "burst": 5}},
            "quotas": {"maxObjects": 10, "maxBytes": "1Mi", "maxObjectBytes": "2k"},
            "retention": {"defaultDays": 30, "collections": {"cache": 1}},
            "collections": [{**NOTES, "upgrades": [{"fromVersion": 1, "rename": {"a": "b"}}]}],
        }
    )
    assert spec.auth is not None and spec.auth.jwks_uri == "https://login.example.com/jwks"
    assert spec.rate_limits.per_user == Rate(60, 5)
    assert spec.rate_limits.per_tenant == Rate(6000, 600)
    assert spec.quotas == Quotas(10, 2**20, 2000)
    assert spec.retention.collections == {"cache": 1}
    [notes] = spec.collections
    assert (notes.name, notes.schema_version, notes.upgrades[0].rename) == ("notes", 2, {"a": "b"})


@pytest.mark.parametrize(
    ("value", "expected"), [(0, 0), ("256Ki", 262144), ("10Gi", 10 * 2**30), ("3M", 3_000_000)]
)
def test_quantities_are_read_like_kubernetes_quantities(value: object, expected: int) -> None:
    assert parse_quantity(value, "q") == expected


@pytest.mark.parametrize("value", [-1, True, "ten", "1.5Gi", "10GB"])
def test_a_malformed_quantity_is_refused_with_its_field(value: object) -> None:
    with pytest.raises(SpecError, match=r"^quotas\.maxBytes: "):
        parse_tenant_spec({"quotas": {"maxBytes": value}}, where="")


INVALID: list[tuple[dict[str, Any], str]] = [
    ({"collections": [{**NOTES, "schema": {"type": "nonsense"}}]}, "collections[0].schema.type"),
    (
        {"collections": [{**NOTES, "upgrades": [{"fromVersion": 1}, {"fromVersion": 1}]}]},
        "collections[0].upgrades[1].fromVersion",
    ),
    (
        {"collections": [{**NOTES, "upgrades": [{"fromVersion": 2}]}]},
        "collections[0].upgrades[0].fromVersion",
    ),
    ({"collections": [NOTES, NOTES]}, "collections[1].name"),
    ({"collections": [{"name": "Bad-Name"}]}, "collections[0].name"),
    ({"retention": {"collections": {"cache": 0}}}, "retention.collections.cache"),
    ({"retention": {"defaultDays": "soon"}}, "retention.defaultDays"),
    ({"quotas": {"maxObjectBytes": "lots"}}, "quotas.maxObjectBytes"),
    ({"rateLimits": {"perUser": {"burst": 0}}}, "rateLimits.perUser.burst"),
    ({"collections": [{**NOTES, "shared": "yes"}]}, "collections[0].shared"),
    ({"identity": {"userClaim": "has space"}}, "identity.userClaim"),
    ({"identity": {"inviteByEmail": True}}, "identity.inviteByEmail"),
    ({"identity": {"orgSpaces": True}}, "identity.orgSpaces"),
    ({"spaces": {"erasure": "forget"}}, "spaces.erasure"),
    ({"files": {"maxFileBytes": "huge"}}, "files.maxFileBytes"),
    ({"files": {"maxFileBytes": 0}}, "files.maxFileBytes"),
    ({"files": {"allowedContentTypes": ["Image/PNG"]}}, "files.allowedContentTypes[0]"),
    ({"files": {"maxBytes": "1Mi"}}, "files.maxBytes"),
]


def test_files_are_off_unless_declared_and_take_their_defaults_when_declared_empty() -> None:
    assert parse_tenant_spec({}).files is None
    files = parse_tenant_spec({"files": {}}).files
    assert files is not None and files.max_file_bytes == 25 * 2**20
    assert files.allows("application/pdf")
    narrow = parse_tenant_spec({"files": {"allowedContentTypes": ["image/*", "text/csv"]}}).files
    assert narrow is not None
    assert narrow.allows("image/webp") and narrow.allows("text/csv")
    assert not narrow.allows("text/html")


@pytest.mark.parametrize(("spec", "field"), INVALID)
def test_gateway_worker_and_operator_refuse_the_same_spec_naming_the_same_field(
    spec: dict[str, Any], field: str
) -> None:
    with pytest.raises(TenantConfigError) as gateway:
        parse_tenant("a", {**spec, "auth": AUTH, "endpoint": "w:50051"})
    with pytest.raises(PolicyError) as worker:
        parse_policy(spec)
    with pytest.raises(InvalidSpec) as operator:
        validate({**spec, "auth": AUTH})
    assert f"tenants.a.{field}" in str(gateway.value)
    assert str(worker.value).startswith(field) or f".{field}" in str(worker.value)
    assert f"spec.{field}" in str(operator.value)


def test_a_valid_spec_is_accepted_by_every_component() -> None:
    spec = {"retention": {"collections": {"cache": 1}}, "collections": [NOTES]}
    tenant = parse_tenant("a", {**spec, "auth": AUTH, "endpoint": "w:50051"})
    policy = parse_policy(spec)
    validate({**spec, "auth": AUTH})
    assert [c.name for c in tenant.collections] == list(policy.collections) == ["notes"]


def test_the_access_stage_defaults_to_general_availability_and_reads_its_allow_lists() -> None:
    assert parse_tenant_spec({}).access.open
    access = parse_tenant_spec(
        {"access": {"stage": "Internal", "allowSubjects": ["t1"], "allowEmailDomains": ["a.io"]}}
    ).access
    assert not access.open and access.stage is Stage.INTERNAL
    assert access.allow_subjects == {"t1"} and access.allow_email_domains == {"a.io"}
    # Launching is one field: the lists may stay.
    launched = parse_tenant_spec(
        {"access": {"stage": "GeneralAvailability", "allowSubjects": ["t1"]}}
    ).access
    assert launched.open


@pytest.mark.parametrize(
    ("access", "field"),
    [
        ({"stage": "Beta"}, "spec.access.stage"),
        ({"stage": "Internal"}, "spec.access.stage"),
        ({"stage": "Internal", "allowEmailDomains": ["ACME.example"]}, "allowEmailDomains[0]"),
        ({"stage": "Internal", "allowSubjects": [""]}, "spec.access.allowSubjects[0]"),
        ({"allowSubjects": "t1"}, "spec.access.allowSubjects"),
    ],
)
def test_an_invalid_access_stage_is_refused_naming_the_field(
    access: dict[str, Any], field: str
) -> None:
    with pytest.raises(SpecError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_tenant_spec({"access": access})


def test_introspection_is_read_with_its_secret_reference_and_checked() -> None:
    intro = {
        "endpoint": "https://login.example.com/introspect",
        "clientId": "stowage",
        "clientSecretRef": {"name": "acme-introspection", "key": "secret"},
    }
    auth = parse_tenant_spec({"auth": {**AUTH, "introspection": intro}}).auth
    assert auth is not None and auth.introspection is not None
    assert auth.introspection.client_secret_ref == SecretRef("acme-introspection", "secret")
    with pytest.raises(SpecError, match=r"spec\.auth\.introspection\.endpoint"):
        parse_tenant_spec(
            {"auth": {**AUTH, "introspection": {**intro, "endpoint": "http://evil.example/"}}}
        )
    with pytest.raises(SpecError, match=r"spec\.auth\.introspection\.clientId"):
        parse_tenant_spec({"auth": {**AUTH, "introspection": {"endpoint": intro["endpoint"]}}})
