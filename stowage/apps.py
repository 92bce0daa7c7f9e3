"""A tenant's components (MCP Apps): what one is, its limits, its URI. No I/O here.

A component is an HTML view a tenant ships with its storage tools: ChatGPT (or
any host speaking the MCP Apps extension, ``io.modelcontextprotocol/ui``)
renders it in a sandboxed iframe when one of the tools it is linked to
returns. The gateway serves it as a ``ui://`` resource; this module is what
the spec parser (:mod:`stowage.tenant_spec`) and the gateway agree on:

- the limits a component is held to (:data:`MAX_HTML_BYTES`, …);
- the domains it may load from or connect to, each an ``https://`` origin
  (:func:`domain_problem`), and the check that every script, stylesheet and
  frame the HTML names comes from one of them (:func:`undeclared_sources`);
- its resource URI, versioned by its content (:func:`resource_uri`), so a
  changed component is a new URI and no host serves a stale copy;
- where a larger bundle lives instead of inline (:class:`ConfigMapKeyRef`, a
  key of a ConfigMap in the Tenant's namespace labelled :data:`BUNDLE_LABEL`),
  and how much one may hold (:data:`MAX_BUNDLE_BYTES`). Whoever reads Tenants
  from the API server reads the key (the gateway, the operator); the parser
  only reads the reference.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urlsplit

#: The extension's identifier, advertised in ``initialize``'s capabilities.
EXTENSION_ID = "io.modelcontextprotocol/ui"
#: The MIME type hosts render a ``ui://`` resource under (and no other).
MIME_TYPE = "text/html;profile=mcp-app"
#: ChatGPT's older MIME type for the same documents (the Apps SDK's "skybridge").
OPENAI_MIME_TYPE = "text/html+skybridge"

#: A component's name: lower-case letters, digits and dashes.
NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
#: The largest inline HTML of one component, and of all of a tenant's together
#: (UTF-8 bytes). A Tenant resource and the worker's policy ConfigMap carry the
#: spec whole, and Kubernetes keeps objects under about a megabyte.
MAX_HTML_BYTES = 512 * 1024
MAX_TOTAL_HTML_BYTES = 768 * 1024
#: The largest HTML of one component held in a ConfigMap (``htmlFrom``): what a
#: ConfigMap can hold (the API server refuses one over 1 MiB of data).
MAX_BUNDLE_BYTES = 1024 * 1024
#: The label a ConfigMap holding a component's HTML carries (value ``true``): the
#: gateway watches only ConfigMaps with it, and the operator refuses one without.
BUNDLE_LABEL = "stowage.dev/component"
BUNDLE_SELECTOR = f"{BUNDLE_LABEL}=true"
MAX_COMPONENTS = 8
MAX_DOMAINS = 32
#: The object tools (``<collection>_<verb>``) a component may be linked to.
LINKABLE_VERBS = ("save", "get", "list", "delete")

_HOST = re.compile(r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LOOPBACK = ("localhost", "127.0.0.1")


@dataclass(frozen=True)
class Domains:
    """Origins (``https://host[:port]``, ``https://*.host``) the view may use, by purpose."""

    #: fetch/XHR/WebSocket targets (CSP ``connect-src``).
    connect: tuple[str, ...] = ()
    #: scripts, styles, images, fonts, media (``script-src``, ``style-src``, ``img-src``, …).
    resource: tuple[str, ...] = ()
    #: nested iframes (``frame-src``).
    frame: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConfigMapKeyRef:
    """A key of a ConfigMap in the Tenant's own namespace (never another's): a component's HTML."""

    name: str
    key: str


@dataclass(frozen=True)
class Component:
    """One component of a tenant: its HTML, the domains it needs, the tools that open it.

    With ``html_from`` the parser leaves ``html`` empty: the reader of the Tenant
    fills it from the ConfigMap (:func:`stowage.tenant_spec.resolve_components`);
    until then the component is not served.
    """

    name: str
    html: str
    title: str | None = None
    description: str | None = None
    #: Tools whose results this component renders (``_meta.ui.resourceUri``).
    tools: tuple[str, ...] = ()
    #: Tools only the component calls: hosts keep them from the model.
    app_only: tuple[str, ...] = ()
    domains: Domains = Domains()
    prefers_border: bool | None = None
    #: Where the HTML is held when it is not inline.
    html_from: ConfigMapKeyRef | None = None

    @property
    def resolved(self) -> bool:
        """True when the HTML is at hand (inline, or read from its ConfigMap)."""
        return bool(self.html)

    @property
    def uri(self) -> str:
        return resource_uri(self)


def domain_problem(value: str) -> str | None:
    """Why ``value`` is not an origin a component may declare, or None.

    An ``https://`` origin (a host, optionally ``*.`` for its subdomains, and a
    port), nothing after it; ``http://`` only for localhost and 127.0.0.1, for
    development.
    """
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return f"{value!r} is not an origin like https://api.example.com"
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in _LOOPBACK):
        return f"{value!r} must be an https:// origin (http:// only for localhost)"
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        return f"{value!r} must be an origin only (scheme, host and port; no path)"
    host = parts.netloc.split(":", 1)[0] if port is not None else parts.netloc
    if not _HOST.match(host):
        return f"{value!r} must name a lower-case host (optionally *. for its subdomains)"
    return None


def _origin(url: str) -> str | None:
    """The origin ``url`` loads from, None for a document-relative or inline source."""
    if url.startswith("//"):
        url = "https:" + url
    parts = urlsplit(url)
    if parts.scheme in ("", "data", "blob"):
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def _covered(origin: str, declared: tuple[str, ...]) -> bool:
    for domain in declared:
        domain = domain.rstrip("/")
        if origin == domain:
            return True
        scheme, _, host = domain.partition("://")
        if (
            host.startswith("*.")
            and origin.startswith(f"{scheme}://")
            and origin.split("://", 1)[1].endswith(host[1:])
        ):
            return True
    return False


class _Sources(HTMLParser):
    """Every external script, stylesheet and frame an HTML document names."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str]] = []  # (purpose, url)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "script" and a.get("src"):
            self.found.append(("resource", a["src"]))
        elif tag == "link" and a.get("href"):
            rel = a.get("rel", "").lower().split()
            if {"stylesheet", "modulepreload", "preload", "icon"} & set(rel):
                self.found.append(("resource", a["href"]))
        elif tag in ("iframe", "frame") and a.get("src"):
            self.found.append(("frame", a["src"]))

    handle_startendtag = handle_starttag


def undeclared_sources(html: str, domains: Domains) -> list[str]:
    """Sources in ``html`` from origins ``domains`` does not declare (empty: all declared).

    A host applies the declared domains as the view's Content-Security-Policy,
    so an undeclared source would fail in the user's browser: better refused
    when the component is declared. A relative source is refused too: a view
    has no origin of its own to load it from.
    """
    parser = _Sources()
    parser.feed(html)
    parser.close()
    refused = []
    for purpose, url in parser.found:
        origin = _origin(url.strip())
        allowed = domains.frame if purpose == "frame" else domains.resource
        if origin is None:
            if not url.strip().startswith(("data:", "blob:")):
                refused.append(url)
        elif not _covered(origin, allowed):
            refused.append(url)
    return refused


def resource_uri(component: Component, links_origin: str | None = None) -> str:
    """``ui://components/<name>/<digest>``: the digest is of everything the resource carries.

    The HTML, its domains and its display preference, and ``links_origin``, the
    origin of the tenant's file links the gateway adds to its domains: change any
    of them and the URI changes, so hosts that cache a template by its URI fetch
    the new one.
    """
    carried = [
        component.html,
        component.title,
        component.description,
        [component.domains.connect, component.domains.resource, component.domains.frame],
        component.prefers_border,
    ]
    # Only when there is one: the URIs of tenants that keep no files stay as they were.
    served = json.dumps(
        [*carried, links_origin] if links_origin else carried, separators=(",", ":")
    )
    digest = hashlib.sha256(served.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"ui://components/{component.name}/{digest}"


__all__ = [
    "BUNDLE_LABEL",
    "BUNDLE_SELECTOR",
    "EXTENSION_ID",
    "LINKABLE_VERBS",
    "MAX_BUNDLE_BYTES",
    "MAX_COMPONENTS",
    "MAX_DOMAINS",
    "MAX_HTML_BYTES",
    "MAX_TOTAL_HTML_BYTES",
    "MIME_TYPE",
    "NAME",
    "OPENAI_MIME_TYPE",
    "Component",
    "ConfigMapKeyRef",
    "Domains",
    "domain_problem",
    "resource_uri",
    "undeclared_sources",
]
