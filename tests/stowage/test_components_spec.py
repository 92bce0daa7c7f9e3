"""Components in the Tenant spec: what the one parser accepts and how it refuses, by field."""

from __future__ import annotations

from typing import Any

import pytest

from stowage.apps import (
    MAX_BUNDLE_BYTES,
    MAX_HTML_BYTES,
    ConfigMapKeyRef,
    Domains,
    domain_problem,
    resource_uri,
    undeclared_sources,
)
from stowage.tenant_spec import (
    ComponentNotFound,
    SpecError,
    parse_tenant_spec,
    resolve_components,
)

NOTES = {"name": "notes", "schema": {"type": "object"}}


def _spec(**component: Any) -> dict[str, Any]:
    return {
        "collections": [NOTES],
        "components": [{"name": "board", "html": "<p>notes</p>", **component}],
    }


def _refusal(spec: dict[str, Any]) -> str:
    with pytest.raises(SpecError) as refused:
        parse_tenant_spec(spec)
    return str(refused.value)


def test_a_component_is_read_with_its_tools_domains_and_preferences() -> None:
    spec = parse_tenant_spec(
        _spec(
            title="Board",
            tools=["notes_list", "items_get"],
            appOnly=["notes_delete"],
            domains={"connect": ["https://api.example.com"], "resource": ["https://*.cdn.example"]},
            prefersBorder=False,
        )
    )
    [c] = spec.components
    assert (c.name, c.title, c.tools, c.app_only) == (
        "board", "Board", ("notes_list", "items_get"), ("notes_delete",),
    )  # fmt: skip
    assert c.domains == Domains(
        connect=("https://api.example.com",), resource=("https://*.cdn.example",)
    )
    assert c.prefers_border is False
    assert c.uri.startswith("ui://components/board/")


@pytest.mark.parametrize(
    ("component", "field", "words"),
    [
        ({"tools": ["invoices_get"]}, "components[0].tools[0]", "not a tool of this tenant"),
        ({"tools": ["my_data_erase"]}, "components[0].tools[0]", "not a tool of this tenant"),
        ({"appOnly": ["notes_save", "notes_save"]}, "components[0].appOnly[1]", "appears twice"),
        ({"name": "Board"}, "components[0].name", "must match"),
        ({"html": "  "}, "components[0].html", "required"),
        ({"html": "x" * (MAX_HTML_BYTES + 1)}, "components[0].html", "over the limit"),
        ({"domains": {"connect": ["http://api.example.com"]}}, "domains.connect[0]", "https://"),
        (
            {"domains": {"resource": ["https://cdn.example.com/js"]}},
            "domains.resource[0]",
            "no path",
        ),
        ({"domains": {"script": ["https://cdn.example.com"]}}, "domains.script", "not connect"),
        ({"prefersBorder": "yes"}, "components[0].prefersBorder", "true or false"),
    ],
)
def test_a_bad_component_is_refused_naming_the_field(
    component: dict[str, Any], field: str, words: str
) -> None:
    message = _refusal(_spec(**component))
    assert f"spec.{field}" in message or field in message
    assert words in message


def test_script_style_or_frame_from_an_undeclared_origin_is_refused() -> None:
    html = (
        '<link rel="stylesheet" href="https://cdn.example.com/a.css">'
        '<script src="/app.js"></script>'
    )
    message = _refusal(_spec(html=html, domains={"resource": ["https://cdn.example.com"]}))
    assert "spec.components[0].html: loads '/app.js'" in message
    frame = '<iframe src="https://maps.example.com/embed"></iframe>'
    assert "maps.example.com" in _refusal(_spec(html=frame))
    # Declared (exactly or by a *. wildcard), inline, or data: is fine.
    ok = (
        '<script src="https://js.cdn.example.com/a.js"></script><script>1</script>'
        '<img src="data:image/png;base64,AA"><iframe src="https://maps.example.com/x"></iframe>'
    )
    parse_tenant_spec(
        _spec(
            html=ok,
            domains={
                "resource": ["https://*.cdn.example.com"],
                "frame": ["https://maps.example.com"],
            },
        )
    )


def test_two_components_may_not_be_opened_by_the_same_tool_nor_share_a_name() -> None:
    spec = {"collections": [NOTES], "components": [
        {"name": "a", "html": "<p>a</p>", "tools": ["notes_get"]},
        {"name": "b", "html": "<p>b</p>", "tools": ["notes_get"]},
    ]}  # fmt: skip
    assert "already opens component 'a'" in _refusal(spec)
    spec["components"][1] = {"name": "a", "html": "<p>b</p>"}
    assert "spec.components[1].name: 'a' appears twice" in _refusal(spec)


def test_all_components_together_stay_within_the_total_limit() -> None:
    big = "x" * (MAX_HTML_BYTES - 10)
    spec = {"components": [{"name": n, "html": big} for n in ("a", "b", "c")]}
    assert "spec.components[1].html: the components' HTML comes to" in _refusal(spec)


def test_the_uri_changes_with_anything_the_resource_carries_and_only_then() -> None:
    base = parse_tenant_spec(_spec()).components[0]
    assert resource_uri(base) == parse_tenant_spec(_spec()).components[0].uri
    for change in ({"html": "<p>notes!</p>"}, {"prefersBorder": True}, {"title": "T"},
                   {"domains": {"connect": ["https://api.example.com"]}}):  # fmt: skip
        assert parse_tenant_spec(_spec(**change)).components[0].uri != base.uri
    # Linking another tool changes the tools, not the resource.
    assert parse_tenant_spec(_spec(tools=["notes_get"])).components[0].uri == base.uri
    # The origin of the tenant's file links joins the resource's domains, and so its URI.
    on_a = resource_uri(base, "https://mcp.a.example")
    assert on_a not in (base.uri, resource_uri(base, "https://mcp.b.example"))
    assert on_a == resource_uri(base, "https://mcp.a.example")


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("https://api.example.com", True),
        ("https://api.example.com:8443", True),
        ("https://*.example.com", True),
        ("http://localhost:5173", True),
        ("http://127.0.0.1", True),
        ("http://api.example.com", False),
        ("https://API.example.com", False),
        ("https://user@api.example.com", False),
        ("https://api.example.com/path", False),
        ("wss://api.example.com", False),
        ("https://api.example.com:99999", False),
    ],
)
def test_what_counts_as_a_declarable_origin(value: str, ok: bool) -> None:
    assert (domain_problem(value) is None) is ok


def test_wildcards_cover_subdomains_only_and_never_a_lookalike() -> None:
    declared = Domains(resource=("https://*.example.com",))
    assert undeclared_sources('<script src="https://a.example.com/x.js"></script>', declared) == []
    found = undeclared_sources('<script src="https://evilexample.com/x.js"></script>', declared)
    assert found == ["https://evilexample.com/x.js"]
    found = undeclared_sources('<script src="//a.example.org/x.js"></script>', declared)
    assert found == ["//a.example.org/x.js"]


BUNDLE = {"configMapKeyRef": {"name": "notes-view", "key": "index.html"}}


def _bundled(**component: Any) -> dict[str, Any]:
    spec = _spec(htmlFrom=BUNDLE, **component)
    del spec["components"][0]["html"]
    return spec


def test_a_component_from_a_configmap_keeps_the_reference_and_is_served_once_read() -> None:
    spec = parse_tenant_spec(_bundled(tools=["notes_get"]))
    [c] = spec.components
    assert c.html_from == ConfigMapKeyRef("notes-view", "index.html")
    assert not c.resolved
    big = "<p>" + "x" * (MAX_HTML_BYTES + 10) + "</p>"  # over the inline limit, under a bundle's

    resolved, problems = resolve_components(spec, lambda ref: big)
    assert problems == ()
    [r] = resolved.components
    assert r.resolved and r.html == big and r.html_from == c.html_from
    changed, _ = resolve_components(spec, lambda ref: big + " ")
    assert changed.components[0].uri != r.uri  # versioned by the HTML read


@pytest.mark.parametrize(
    ("read", "kind", "words"),
    [
        (lambda ref: (_ for _ in ()).throw(LookupError("ConfigMap t/notes-view not found")),
         ComponentNotFound, "ConfigMap t/notes-view not found"),
        (lambda ref: "x" * (MAX_BUNDLE_BYTES + 1), SpecError, "over the limit of 1048576"),
        (lambda ref: '<script src="https://evil.example/a.js"></script>', SpecError,
         "loads 'https://evil.example/a.js' from an origin domains.resource"),
        (lambda ref: "  ", SpecError, "empty"),
    ],
)  # fmt: skip
def test_a_configmap_component_that_cannot_be_served_names_htmlfrom_and_spares_the_others(
    read: Any, kind: type[SpecError], words: str
) -> None:
    raw = _bundled()
    raw["components"].append({"name": "inline", "html": "<p>ok</p>"})
    spec, problems = resolve_components(parse_tenant_spec(raw), read)
    [problem] = problems
    assert type(problem) is kind
    assert str(problem).startswith("spec.components[0].htmlFrom: ") and words in str(problem)
    assert [c.resolved for c in spec.components] == [False, True]


@pytest.mark.parametrize(
    ("component", "words"),
    [
        ({"html": "<p>x</p>", "htmlFrom": BUNDLE}, "components[0].htmlFrom: set html"),
        ({"htmlFrom": {"configMapKeyRef": {"name": "v", "key": "k", "namespace": "other"}}},
         "configMapKeyRef.namespace: only name and key (the ConfigMap is in the Tenant's"),
        ({"htmlFrom": {"configMapKeyRef": {"name": "other/v", "key": "k"}}},
         "configMapKeyRef.name: 'other/v' is not a ConfigMap name"),
        ({"htmlFrom": {"configMapKeyRef": {"name": "v"}}}, "configMapKeyRef.key: required"),
    ],
)  # fmt: skip
def test_a_bad_configmap_reference_is_refused_naming_the_field(
    component: dict[str, Any], words: str
) -> None:
    raw = _spec(**component)
    if "html" not in component:
        del raw["components"][0]["html"]
    assert words in _refusal(raw)
