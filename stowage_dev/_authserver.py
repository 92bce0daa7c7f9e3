"""The development OAuth 2.1 authorization server's HTTP surface, as Starlette routes.

``stowage dev`` passes :meth:`DevAuthServer.routes` to the gateway's
``create_app``; tests serve them on their own. The protocol is authlib's
(:mod:`stowage_dev._oauth`); this module reads each request, fetches the
client's metadata document when the ``client_id`` is a URL, and answers:

- RFC 8414 metadata at ``/.well-known/oauth-authorization-server/dev-auth``
  and the same document for OIDC discovery at both path forms
  (``/.well-known/openid-configuration/dev-auth`` and
  ``/dev-auth/.well-known/openid-configuration``);
- ``/dev-auth/jwks``, ``/register`` (RFC 7591), ``/authorize`` (a consent page
  that names the client and the scopes; the answer carries ``iss``, RFC 9207),
  ``/token`` (code + PKCE S256, refresh with rotation) and ``/revoke`` (RFC 7009).

Anyone may sign in by name: a development server that must never face the internet.
No answer of it may be shown in a frame (:data:`NOT_FRAMEABLE`), so no other site can
overlay the consent page and trick a click on Allow.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from joserfc.jwk import RSAKey
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from stowage_dev._authstate import AuthState
from stowage_dev._client_documents import ClientDocumentError, ClientDocuments, is_document_url
from stowage_dev._consent import consent_page
from stowage_dev._keys import DEFAULT_SCOPES, public_jwks
from stowage_dev._oauth import AUTH_METHODS, GRANT_TYPES, HttpRequest, OAuthServer, known_scopes

log = logging.getLogger(__name__)

#: Headers on every answer: no page of this server is shown in a frame (clickjacking).
#: CSP ``frame-ancestors`` for current browsers, ``X-Frame-Options`` for older ones.
NOT_FRAMEABLE = {"content-security-policy": "frame-ancestors 'none'", "x-frame-options": "DENY"}

Endpoint = Callable[[Request], Awaitable[Response]]


def _not_frameable(endpoint: Endpoint) -> Endpoint:
    """``endpoint``, its answers carrying :data:`NOT_FRAMEABLE`."""

    async def answer(request: Request) -> Response:
        response = await endpoint(request)
        response.headers.update(NOT_FRAMEABLE)
        return response

    return answer


def _error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={"cache-control": "no-store"},
    )


class DevAuthServer:
    """The development authorization server at ``issuer``, for the MCP servers in ``resources``.

    ``resources`` is consulted on every request, so a caller may add to it.
    Clients, grants and refresh tokens are kept in ``state_file``.
    """

    def __init__(
        self, key: RSAKey, issuer: str, *, resources: Collection[str], state_file: Path
    ) -> None:
        self.key = key
        self.issuer = issuer.rstrip("/")
        parts = urlsplit(self.issuer)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self.path = parts.path  # e.g. /dev-auth
        self.resources = resources
        self._oauth = OAuthServer(
            key=lambda: self.key,
            issuer=self.issuer,
            resources=resources,
            state=AuthState(state_file),
            documents=ClientDocuments(),
            metadata=self.metadata(),
        )

    def metadata(self) -> dict[str, Any]:
        """RFC 8414 authorization server metadata."""
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "registration_endpoint": f"{self.issuer}/register",
            "revocation_endpoint": f"{self.issuer}/revoke",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": list(GRANT_TYPES),
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "scopes_supported": list(DEFAULT_SCOPES),
            "client_id_metadata_document_supported": True,
            "authorization_response_iss_parameter_supported": True,
        }

    def routes(self) -> list[BaseRoute]:
        p = self.path
        endpoints: list[tuple[str, Endpoint, list[str]]] = [
            (f"/.well-known/oauth-authorization-server{p}", self._metadata, ["GET"]),
            (f"/.well-known/openid-configuration{p}", self._metadata, ["GET"]),
            (f"{p}/.well-known/openid-configuration", self._metadata, ["GET"]),
            (f"{p}/jwks", self._jwks, ["GET"]),
            (f"{p}/register", self._register, ["POST"]),
            (f"{p}/authorize", self._authorize, ["GET", "POST"]),
            (f"{p}/token", self._token, ["POST"]),
            (f"{p}/revoke", self._revoke, ["POST"]),
        ]
        return [
            Route(path, _not_frameable(endpoint), methods=methods)
            for path, endpoint, methods in endpoints
        ]

    async def _metadata(self, request: Request) -> Response:
        return JSONResponse(self.metadata(), headers={"cache-control": "max-age=300"})

    async def _jwks(self, request: Request) -> Response:
        return JSONResponse(public_jwks(self.key), headers={"cache-control": "max-age=300"})

    async def _read(self, request: Request, *, json_body: bool = False) -> HttpRequest:
        """The whole request, addressed by the issuer's origin (not the Host header)."""
        query = request.url.query
        uri = f"{self._origin}{request.url.path}" + (f"?{query}" if query else "")
        form: list[tuple[str, str]] = []
        body: Any = None
        if json_body:
            body = await request.json()
        elif request.method == "POST":
            form = [(k, v) for k, v in (await request.form()).multi_items() if isinstance(v, str)]
        return HttpRequest(
            method=request.method,
            uri=uri,
            headers=request.headers,
            query=request.query_params.multi_items(),
            form=form,
            json=body,
        )

    async def _fetch_client_document(self, client_id: str | None) -> Response | None:
        """Fetch the document a URL ``client_id`` names; an error response when unusable."""
        if not client_id or not is_document_url(client_id):
            return None
        try:
            await self._oauth.documents.resolve(client_id)
        except ClientDocumentError as e:
            log.info("client metadata document %s refused: %s", client_id, e)
            return _error("invalid_client", str(e))
        return None

    async def _register(self, request: Request) -> Response:
        try:
            incoming = await self._read(request, json_body=True)
        except ValueError:
            return _error("invalid_client_metadata", "the body must be JSON")
        response: Response = self._oauth.create_endpoint_response("client_registration", incoming)
        return response

    async def _authorize(self, request: Request) -> Response:
        incoming = await self._read(request)
        params = dict([*incoming.query, *incoming.form])
        if failed := await self._fetch_client_document(params.get("client_id")):
            return failed
        try:
            grant = self._oauth.get_consent_grant(incoming)
        except OAuth2Error as error:
            return self._with_issuer(self._oauth.handle_error_response(None, error))
        decision = params.get("decision", "allow")
        user = params.get("username", "").strip()
        if request.method == "GET" or (decision == "allow" and not user):
            return self._consent(grant, params)
        response: Response = self._oauth.create_authorization_response(
            incoming, grant_user=user if decision == "allow" else None, grant=grant
        )
        return self._with_issuer(response)

    def _consent(self, grant: Any, params: dict[str, str]) -> HTMLResponse:
        client = grant.request.client.record
        granted = grant.request.scope.split()
        asked = (params.get("scope") or "").split()
        page = consent_page(
            action=f"{self.issuer}/authorize",
            client_name=client.client_name,
            client_id=client.client_id,
            from_document=is_document_url(client.client_id),
            scopes=granted,
            dropped=[s for s in asked if s not in known_scopes(" ".join(granted))],
            resource=params.get("resource"),
            hidden=list(params.items()),
        )
        return HTMLResponse(page, headers={"cache-control": "no-store"})

    def _with_issuer(self, response: Response) -> Response:
        """RFC 9207: every redirect back to the client names this issuer."""
        location = response.headers.get("location")
        if response.status_code == 302 and location:
            response.headers["location"] = add_params_to_uri(location, [("iss", self.issuer)])
        return response

    def _client_id_of(self, incoming: HttpRequest) -> str | None:
        form = dict(incoming.form)
        basic_id, _ = extract_basic_authorization(incoming.headers)
        found: str | None = form.get("client_id") or basic_id
        return found

    async def _token(self, request: Request) -> Response:
        incoming = await self._read(request)
        if failed := await self._fetch_client_document(self._client_id_of(incoming)):
            return failed
        response: Response = self._oauth.create_token_response(incoming)
        return response

    async def _revoke(self, request: Request) -> Response:
        incoming = await self._read(request)
        if failed := await self._fetch_client_document(self._client_id_of(incoming)):
            return failed
        response: Response = self._oauth.create_endpoint_response("revocation", incoming)
        return response
