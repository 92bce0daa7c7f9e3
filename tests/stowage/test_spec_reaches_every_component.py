"""A field the shared parser reads reaches every component as it parsed it.

The Tenant spec is parsed in one place (``stowage.tenant_spec``). The gateway
holds the parsed value, the worker reads the operator's policy ConfigMap with
the same parser, and the operator reads its own parts from it. This test sets
every field of the spec to something other than its default and checks that
each component ends up with exactly that value: a field dropped on its way
(a list of fields to copy, a copy of some of them) fails here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import yaml
from stowage_operator import _backups, _manifests
from stowage_operator._naming import POLICY_KEY
from stowage_operator._settings import OperatorSettings
from stowage_operator._types import Region, TenantRef

from gateway.directory._tenant_file import parse_tenant
from stowage.tenant_spec import TenantSpec, parse_tenant_spec
from tenant_worker._policy import parse_policy

#: Every part of the spec, none at its default.
SPEC: dict[str, Any] = {
    "region": "eu-west",
    "auth": {
        "issuer": "https://login.acme.example/",
        "audience": "https://mcp.example.com/t/acme/mcp",
        "jwksUri": "https://login.acme.example/keys",
        "introspection": {
            "endpoint": "https://login.acme.example/introspect",
            "clientId": "stowage",
            "clientSecretRef": {"name": "acme-introspection", "key": "secret"},
            "allTokens": True,
        },
        "requireAuthTime": True,
    },
    "rateLimits": {
        "perUser": {"requestsPerMinute": 60, "burst": 5},
        "perTenant": {"requestsPerMinute": 600, "burst": 50},
    },
    "quotas": {
        "maxObjects": 500,
        "maxBytes": "1Gi",
        "maxObjectBytes": "64Ki",
        "perUser": {"maxObjects": 50, "maxBytes": "10Mi"},
    },
    "retention": {"defaultDays": 30, "collections": {"cache": 1}},
    "collections": [
        {
            "name": "notes",
            "schemaVersion": 2,
            "schema": {"type": "object", "properties": {"title": {"type": "string"}}},
            "upgrades": [{"fromVersion": 1, "rename": {"text": "body"}}],
        },
        {"name": "lists", "shared": True, "schema": {"type": "object"}},
    ],
    "identity": {
        "userClaim": "account_id",
        "nameClaim": "name",
        "emailClaim": "email",
        "orgClaim": "org",
        "inviteByEmail": True,
        "orgSpaces": True,
    },
    "spaces": {"erasure": "delete"},
    "files": {"maxFileBytes": "10Mi", "allowedContentTypes": ["image/png", "image/*"]},
    "access": {
        "stage": "Internal",
        "allowSubjects": ["tester-1"],
        "allowEmailDomains": ["acme.example"],
    },
    "worker": {
        "replicas": 3,
        "image": "registry.example/stowage:2",
        "resources": {"requests": {"cpu": "200m"}, "limits": {"memory": "1Gi"}},
    },
    "backup": {
        "enabled": True,
        "schedule": "7 2 * * *",
        "drillSchedule": "9 4 * * 0",
        "keep": {"count": 3, "days": 10},
    },
    "components": [
        {
            "name": "notes-board",
            "title": "Notes",
            "description": "The user's notes.",
            "html": "<!doctype html><main>notes</main>",
            "tools": ["notes_list", "notes_get"],
            "appOnly": ["notes_delete"],
            "domains": {"connect": ["https://api.acme.example"]},
            "prefersBorder": True,
        }
    ],
    "deletionPolicy": "Delete",
}


def test_the_sample_sets_every_field_of_the_spec_to_something_not_its_default() -> None:
    parsed, default = parse_tenant_spec(SPEC), TenantSpec()
    for f in dataclasses.fields(TenantSpec):
        assert getattr(parsed, f.name) != getattr(default, f.name), (
            f"add spec.{f.name} to SPEC with a value other than its default"
        )


def test_the_worker_reads_every_field_from_the_operators_policy_config_map() -> None:
    ref = TenantRef(namespace="tenants", name="acme", uid="u", generation=1)
    config_map = _manifests.config_map(ref, SPEC)
    policy = parse_policy(yaml.safe_load(config_map["data"][POLICY_KEY]))
    assert policy.spec == parse_tenant_spec(SPEC)


def test_the_gateway_holds_the_parsed_spec_as_it_stands() -> None:
    tenant = parse_tenant("acme", SPEC, endpoint="tenant-acme-worker.tenants.svc:50051")
    assert tenant.spec == parse_tenant_spec(SPEC)


def test_the_operator_reads_its_own_parts_through_the_parser() -> None:
    ref = TenantRef(namespace="tenants", name="acme", uid="u", generation=1)
    settings = OperatorSettings.from_env({"KUBECONFIG": "/k"})
    region = Region.from_body(
        {
            "metadata": {"name": "eu-west"},
            "spec": {
                "postgres": {"host": "pg", "adminSecretRef": {"name": "a", "namespace": "n"}},
                "backup": {"persistentVolumeClaim": {"claimName": "backups"}},
            },
        }
    )
    parsed = parse_tenant_spec(SPEC)
    assert _manifests.replicas(SPEC) == parsed.worker.replicas == 3
    assert _manifests.worker_image(SPEC, settings) == "registry.example/stowage:2"
    plan = _backups.plan(ref, SPEC, region)
    assert isinstance(plan, _backups.BackupPlan)
    assert (plan.schedule, plan.drill_schedule) == ("7 2 * * *", "9 4 * * 0")
    assert (plan.keep_count, plan.keep_days) == (3, 10)
