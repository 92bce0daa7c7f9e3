"""Names and conditions the operator derives: stable, bounded, and honest about transitions."""

from __future__ import annotations

from stowage_operator import OperatorSettings
from stowage_operator._conditions import merge
from stowage_operator._naming import database_name, endpoint
from stowage_operator._spec import InvalidSpec, policy_document, validate
from stowage_operator._types import Condition, Namespace, TenantName


def test_database_names_are_stable_and_fit_postgres_limits() -> None:
    short = database_name(Namespace("shop"), TenantName("acme"))
    assert short == "stowage_shop_acme"
    long_ns = Namespace("a-very-long-namespace-name-for-the-tenants-of-one-team")
    long_name = database_name(long_ns, TenantName("an-equally-long-tenant-name-x"))
    assert len(long_name) <= 63
    assert long_name == database_name(long_ns, TenantName("an-equally-long-tenant-name-x"))
    other = database_name(long_ns, TenantName("an-equally-long-tenant-name-y"))
    assert other != long_name
    # Dashes are not allowed unquoted in PostgreSQL names; distinct inputs stay distinct.
    assert database_name(Namespace("a-b"), TenantName("c")) != database_name(
        Namespace("a_b"), TenantName("c")
    )


def test_endpoint_is_the_worker_service_in_the_tenant_namespace() -> None:
    assert endpoint(Namespace("t"), TenantName("acme")) == "tenant-acme-worker.t.svc:50051"


def test_condition_transition_time_changes_only_when_the_status_does() -> None:
    first = merge(None, [Condition("Ready", "False", "Waiting", "x")], 1)
    again = merge(first, [Condition("Ready", "False", "Other", "y")], 2)
    assert again[0]["lastTransitionTime"] == first[0]["lastTransitionTime"]
    assert again[0]["reason"] == "Other"
    assert again[0]["observedGeneration"] == 2
    flipped = merge(
        [{**first[0], "lastTransitionTime": "2000-01-01T00:00:00Z"}],
        [Condition("Ready", "True", "Reconciled", "z")],
        3,
    )
    assert flipped[0]["lastTransitionTime"] != "2000-01-01T00:00:00Z"


def test_invalid_json_schema_names_the_field() -> None:
    spec = {"collections": [{"name": "n", "schema": {"type": "object", "minProperties": -1}}]}
    try:
        validate(spec)
    except InvalidSpec as e:
        assert e.reason == "InvalidSpec"
        assert str(e).startswith("spec.collections[0].schema.minProperties")
    else:
        raise AssertionError("an invalid schema passed")


def test_policy_document_is_the_whole_spec_so_no_field_is_left_behind() -> None:
    spec = {
        "region": "eu",
        "auth": {"issuer": "https://i/", "audience": "a"},
        "retention": {"defaultDays": 1},
        "quotas": {"maxObjects": 3},
    }
    assert policy_document(spec) == spec


def test_settings_come_from_the_environment_with_flags_winning() -> None:
    settings = OperatorSettings.from_env(
        {
            "KUBECONFIG": "/k",
            "STOWAGE_OPERATOR_NAMESPACES": "a, b",
            "STOWAGE_OPERATOR_RESYNC_SECONDS": "5",
        },
        resync_seconds=7.0,
        worker_image=None,
    )
    assert str(settings.kubeconfig) == "/k"
    assert settings.namespaces == ("a", "b")
    assert settings.resync_seconds == 7.0
    assert settings.worker_image == OperatorSettings().worker_image


def test_kubernetes_api_failures_become_the_operators_own_typed_errors() -> None:
    from kubernetes_asyncio.client.exceptions import ApiException
    from stowage_operator._errors import (
        APIConflictError,
        APINotFoundError,
        KubeError,
        TemporaryError,
    )
    from stowage_operator._kube import _error

    missing = _error(ApiException(status=404, reason="Not Found"), "GET /x")
    taken = _error(ApiException(status=409, reason="Conflict"), "POST /x")
    refused = _error(ApiException(status=403, reason="Forbidden"), "GET /y")
    assert isinstance(missing, APINotFoundError) and missing.status == 404
    assert isinstance(taken, APIConflictError)
    assert type(refused) is KubeError and "HTTP 403 Forbidden" in refused.message
    # All of them are retried later, as kopf's temporary errors.
    assert all(isinstance(e, TemporaryError) for e in (missing, taken, refused))
