"""Client ID metadata documents: a URL as ``client_id``.

Per draft-ietf-oauth-client-id-metadata-document.

A client that has no registration names itself by an HTTPS URL; the server
fetches the JSON document there, which must name that same URL as its
``client_id`` and list the client's redirect URIs. ChatGPT and newer MCP
clients prefer this to dynamic registration. authlib has no support for it,
so this module does the fetching and checking, and the authorization server
looks the result up like any registered client.

Documents are cached for a few minutes, are at most 5 KiB, and may be served
over plain HTTP only from a loopback host (this is a development server). The
redirect URIs they list follow the rule dynamic registration applies too
(:func:`redirect_uri_allowed`).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from stowage_dev._authstate import ClientRecord

log = logging.getLogger(__name__)

MAX_BYTES = 5 * 1024
CACHE_SECONDS = 300.0
FETCH_TIMEOUT = 5.0


class ClientDocumentError(Exception):
    """The client ID names a document that cannot be used; the message says why."""


def is_document_url(client_id: str) -> bool:
    """Whether ``client_id`` names a metadata document rather than a registered client."""
    return client_id.startswith(("https://", "http://"))


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


#: Why a redirect URI is refused, for error descriptions.
REDIRECT_URI_RULE = (
    "plain http is allowed only for a loopback host (127.0.0.1, [::1] or localhost); use https"
)


def redirect_uri_allowed(uri: str) -> bool:
    """Whether ``uri`` may receive authorization codes: https anywhere, plain http on loopback.

    A code sent over plain HTTP to another host can be read on the way (RFC 8252
    section 8.3 allows it only to the loopback interface). Other schemes, a native
    app's own (RFC 8252 section 7.1), are left to the other checks.
    """
    parts = urlsplit(uri)
    return parts.scheme != "http" or _loopback(parts.hostname or "")


def check_url(url: str) -> None:
    """Refuse URLs the draft does not allow as a client ID."""
    parts = urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and _loopback(parts.hostname or "")):
        raise ClientDocumentError("a client ID URL must use https (http only on loopback)")
    if not parts.path.strip("/"):
        raise ClientDocumentError("a client ID URL must have a path")
    if parts.fragment or parts.username or parts.password:
        raise ClientDocumentError("a client ID URL has no fragment and no credentials")
    if any(segment in (".", "..") for segment in parts.path.split("/")):
        raise ClientDocumentError("a client ID URL has no dot segments")


def parse_document(url: str, document: object) -> ClientRecord:
    """The client a fetched document describes, checked against the URL it came from."""
    if not isinstance(document, dict):
        raise ClientDocumentError("the client metadata document is not a JSON object")
    if document.get("client_id") != url:
        raise ClientDocumentError(
            "the client metadata document's client_id is not the URL it was fetched from"
        )
    uris = document.get("redirect_uris")
    if not isinstance(uris, list) or not uris or not all(isinstance(u, str) for u in uris):
        raise ClientDocumentError("the client metadata document lists no redirect_uris")
    for uri in uris:
        if not redirect_uri_allowed(uri):
            raise ClientDocumentError(f"redirect URI {uri}: {REDIRECT_URI_RULE}")
    method = document.get("token_endpoint_auth_method", "none")
    if method != "none" or "client_secret" in document:
        raise ClientDocumentError(
            "a client metadata document client is public: token_endpoint_auth_method none"
        )
    name = document.get("client_name")
    client_uri = document.get("client_uri")
    scope = document.get("scope")
    return ClientRecord(
        client_id=url,
        client_name=name if isinstance(name, str) and name else urlsplit(url).netloc,
        redirect_uris=tuple(uris),
        scope=scope if isinstance(scope, str) else "",
        client_uri=client_uri if isinstance(client_uri, str) else None,
    )


@dataclass(frozen=True)
class _Cached:
    client: ClientRecord
    until: float


class ClientDocuments:
    """Fetches and caches the clients that client ID URLs describe."""

    def __init__(self) -> None:
        self._cache: dict[str, _Cached] = {}

    def cached(self, url: str) -> ClientRecord | None:
        """The client fetched for ``url`` recently, if any (no I/O)."""
        found = self._cache.get(url)
        return found.client if found is not None and found.until > time.monotonic() else None

    async def resolve(self, url: str) -> ClientRecord:
        """The client ``url`` describes, fetched unless cached; ClientDocumentError if unusable."""
        if (client := self.cached(url)) is not None:
            return client
        check_url(url)
        try:
            async with (
                httpx.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=False) as http,
                http.stream("GET", url, headers={"accept": "application/json"}) as response,
            ):
                if response.status_code != 200:
                    raise ClientDocumentError(
                        f"the client metadata document answered HTTP {response.status_code}"
                    )
                body = b""
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_BYTES:
                        raise ClientDocumentError(
                            f"the client metadata document is over {MAX_BYTES} bytes"
                        )
        except httpx.HTTPError as e:
            raise ClientDocumentError(
                f"the client metadata document could not be fetched: {type(e).__name__}"
            ) from e
        try:
            document = json.loads(body)
        except ValueError as e:
            raise ClientDocumentError("the client metadata document is not JSON") from e
        client = parse_document(url, document)
        self._cache[url] = _Cached(client, time.monotonic() + CACHE_SECONDS)
        log.info("client metadata document %s fetched: %s", url, client.client_name)
        return client
