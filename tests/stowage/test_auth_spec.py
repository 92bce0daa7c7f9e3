"""``spec.auth``'s switches for revocation across refreshes and introspection of every token."""

from __future__ import annotations

import pytest

from stowage.tenant_spec import SpecError, parse_tenant_spec

AUTH = {"issuer": "https://kc.example/realms/acme", "audience": "https://mcp.example/t/acme/mcp"}
INTROSPECTION = {"endpoint": "https://kc.example/introspect", "clientId": "stowage-gateway"}


def test_require_auth_time_and_all_tokens_default_off_and_are_read() -> None:
    plain = parse_tenant_spec({"auth": {**AUTH, "introspection": INTROSPECTION}})
    assert plain.auth is not None and plain.auth.introspection is not None
    assert not plain.auth.require_auth_time and not plain.auth.introspection.all_tokens
    strict = parse_tenant_spec(
        {"auth": {**AUTH, "requireAuthTime": True,
                  "introspection": {**INTROSPECTION, "allTokens": True}}}
    )  # fmt: skip
    assert strict.auth is not None and strict.auth.introspection is not None
    assert strict.auth.require_auth_time and strict.auth.introspection.all_tokens


@pytest.mark.parametrize(
    ("auth", "field"),
    [
        ({**AUTH, "requireAuthTime": "yes"}, "spec.auth.requireAuthTime"),
        ({**AUTH, "introspection": {**INTROSPECTION, "allTokens": 1}},
         "spec.auth.introspection.allTokens"),
    ],
)  # fmt: skip
def test_a_switch_that_is_not_a_boolean_is_refused_naming_it(
    auth: dict[str, object], field: str
) -> None:
    with pytest.raises(SpecError, match=field.replace(".", r"\.")):
        parse_tenant_spec({"auth": auth}, "spec")
