"""A tenant's components as MCP Apps resources, and the tool metadata that links them. No I/O.

From the tenant's parsed ``components`` (:mod:`stowage.apps`) this builds, once
per tenant settings object (with its tool catalogue):

- the ``resources/list`` result and each resource's ``resources/read`` result:
  the HTML as ``text/html;profile=mcp-app``, with ``_meta.ui`` (CSP domains,
  border preference) and ChatGPT's older ``openai/widget*`` keys for the same.
  For a tenant that keeps files, the origin of its file links joins every
  component's connect and resource domains;
- the ``_meta`` a linked tool carries: ``ui.resourceUri`` (and the flat
  ``ui/resourceUri`` older hosts read), ChatGPT's ``openai/outputTemplate`` and
  ``openai/widgetAccessible``, and for a tool only a component calls,
  ``ui.visibility: ["app"]`` and ``openai/visibility: "private"``, which tell the
  host to keep it from the model while the view may still call it.

URIs are versioned by content (:func:`stowage.apps.resource_uri`, the links'
origin included): a changed component, or a tenant's files moving to another
origin, is a new URI, so no host serves a stale copy. A component whose
``htmlFrom`` ConfigMap could not be read (``Component.resolved`` false) is not
served and links no tool; its app-only tools stay hidden from the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import mcp_types as types

from stowage import apps
from stowage.apps import Component


def _with(domains: tuple[str, ...], origin: str | None) -> list[str]:
    return [*domains, origin] if origin is not None and origin not in domains else list(domains)


def _resource_meta(component: Component, links_origin: str | None) -> dict[str, Any]:
    d = component.domains
    connect, resource = _with(d.connect, links_origin), _with(d.resource, links_origin)
    parts = {"connectDomains": connect, "resourceDomains": resource, "frameDomains": d.frame}
    ui: dict[str, Any] = {"csp": {key: list(v) for key, v in parts.items() if v}}
    openai: dict[str, Any] = {
        "openai/widgetCSP": {
            "connect_domains": connect,
            "resource_domains": resource,
            "frame_domains": list(d.frame),
        },
    }
    if component.prefers_border is not None:
        ui["prefersBorder"] = component.prefers_border
        openai["openai/widgetPrefersBorder"] = component.prefers_border
    if component.description:
        openai["openai/widgetDescription"] = component.description
    return {"ui": ui, **openai}


def tool_meta(uri: str | None, *, app_only: bool) -> dict[str, Any]:
    """The ``_meta`` keys that link a tool to its component (``uri``) and say who may call it."""
    ui: dict[str, Any] = {}
    meta: dict[str, Any] = {"openai/widgetAccessible": True}
    if uri is not None:
        ui["resourceUri"] = uri
        meta["ui/resourceUri"] = uri
        meta["openai/outputTemplate"] = uri
    ui["visibility"] = ["app"] if app_only else ["model", "app"]
    if app_only:
        meta["openai/visibility"] = "private"
    return {"ui": ui, **meta}


@dataclass(frozen=True)
class Components:
    """One tenant's components: the listing, each read result, and each tool's link."""

    listing: types.ListResourcesResult
    reads: Mapping[str, types.ReadResourceResult]
    #: Tool name → the ``_meta`` keys to add to its definition.
    tool_links: Mapping[str, Mapping[str, Any]]

    def read(self, uri: str) -> types.ReadResourceResult | None:
        return self.reads.get(uri)


def build_components(
    components: tuple[Component, ...], links_origin: str | None = None
) -> Components:
    """The tenant's components; ``links_origin`` (the origin its file links are on, when it
    keeps files) joins every component's connect and resource domains, so a view can
    upload to a link and show a downloaded image without declaring the gateway itself."""
    resources: list[types.Resource] = []
    reads: dict[str, types.ReadResourceResult] = {}
    links: dict[str, dict[str, Any]] = {}
    # A component whose ConfigMap could not be read stays unserved, but its app-only
    # tools stay hidden from the model.
    app_only = {tool for component in components for tool in component.app_only}
    for component in components:
        if not component.resolved:
            continue
        uri = apps.resource_uri(component, links_origin)
        meta = _resource_meta(component, links_origin)
        resources.append(
            types.Resource(
                uri=uri,
                name=component.name,
                title=component.title,
                description=component.description,
                mime_type=apps.MIME_TYPE,
                size=len(component.html.encode("utf-8", "surrogatepass")),
                _meta=meta,
            )
        )
        reads[uri] = types.ReadResourceResult(
            contents=[
                types.TextResourceContents(
                    uri=uri, mime_type=apps.MIME_TYPE, text=component.html, _meta=meta
                )
            ]
        )
        for tool in component.tools:
            links[tool] = tool_meta(uri, app_only=tool in app_only)
    for tool in app_only - links.keys():
        links[tool] = tool_meta(None, app_only=True)
    return Components(types.ListResourcesResult(resources=resources), reads, links)


NO_COMPONENTS = build_components(())
