"""A development OAuth 2.1 authorization server, trusted by the demo tenant.

Serves RFC 8414 metadata, a JWKS, dynamic client registration (RFC 7591) and
the authorization code flow with PKCE (S256 only) behind a "dev login" form
that asks only for a user name. Enough for the MCP Inspector's OAuth flow and
for local demos; it keeps clients and codes in memory and must never face the
internet.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from joserfc.jwk import RSAKey
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from gateway._devkeys import DEFAULT_SCOPES, load_or_create_key, public_jwks, sign_token

CODE_TTL = 300
TOKEN_TTL = 3600


@dataclass(frozen=True)
class _Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    subject: str
    scope: str
    resource: str
    expires: float


def _error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={"cache-control": "no-store"},
    )


class DevAuthServer:
    def __init__(self, key: RSAKey, issuer: str) -> None:
        self.key = key
        self.issuer = issuer.rstrip("/")
        self.path = urlsplit(self.issuer).path  # e.g. /dev-auth
        self._clients: dict[str, dict[str, Any]] = {}
        self._codes: dict[str, _Grant] = {}

    @classmethod
    def from_key_file(cls, path: Path, issuer: str) -> DevAuthServer:
        return cls(load_or_create_key(path), issuer)

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "registration_endpoint": f"{self.issuer}/register",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "scopes_supported": list(DEFAULT_SCOPES),
        }

    def routes(self) -> list[BaseRoute]:
        p = self.path
        return [
            Route(f"/.well-known/oauth-authorization-server{p}", self._metadata, methods=["GET"]),
            Route(f"{p}/.well-known/openid-configuration", self._metadata, methods=["GET"]),
            Route(f"{p}/jwks", self._jwks, methods=["GET"]),
            Route(f"{p}/register", self._register, methods=["POST"]),
            Route(f"{p}/authorize", self._authorize, methods=["GET", "POST"]),
            Route(f"{p}/token", self._token, methods=["POST"]),
        ]

    async def _metadata(self, request: Request) -> Response:
        return JSONResponse(self.metadata())

    async def _jwks(self, request: Request) -> Response:
        return JSONResponse(public_jwks(self.key), headers={"cache-control": "max-age=300"})

    async def _register(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return _error("invalid_client_metadata", "the body must be JSON")
        uris = body.get("redirect_uris") if isinstance(body, dict) else None
        if not isinstance(uris, list) or not uris or not all(isinstance(u, str) for u in uris):
            return _error("invalid_redirect_uri", "redirect_uris must be a non-empty list")
        client_id = secrets.token_urlsafe(16)
        client = {
            "client_id": client_id,
            "client_id_issued_at": int(time.time()),
            "redirect_uris": uris,
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
            "client_name": body.get("client_name", "dev client"),
            "scope": body.get("scope") or " ".join(DEFAULT_SCOPES),
        }
        self._clients[client_id] = client
        return JSONResponse(client, status_code=201)

    async def _authorize(self, request: Request) -> Response:
        params: dict[str, str] = dict(request.query_params)
        if request.method == "POST":
            params.update({k: str(v) for k, v in (await request.form()).items()})
        client = self._clients.get(params.get("client_id", ""))
        redirect_uri = params.get("redirect_uri", "")
        if client is None:
            return _error("invalid_client", "unknown client_id; register first")
        if redirect_uri not in client["redirect_uris"]:
            return _error("invalid_request", "redirect_uri is not registered for this client")
        if params.get("response_type") != "code":
            return _error("unsupported_response_type", "only response_type=code")
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            return _error("invalid_request", "PKCE with code_challenge_method=S256 is required")
        user = params.get("username", "").strip()
        if request.method == "GET" or not user:
            return self._login_form(params)
        code = secrets.token_urlsafe(24)
        self._codes[code] = _Grant(
            client_id=client["client_id"],
            redirect_uri=redirect_uri,
            challenge=params["code_challenge"],
            subject=user,
            scope=params.get("scope") or " ".join(DEFAULT_SCOPES),
            resource=params.get("resource", ""),
            expires=time.time() + CODE_TTL,
        )
        query = {"code": code, "iss": self.issuer}
        if "state" in params:
            query["state"] = params["state"]
        sep = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(f"{redirect_uri}{sep}{urlencode(query)}", status_code=302)

    def _login_form(self, params: dict[str, str]) -> HTMLResponse:
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in params.items()
            if k != "username"
        )
        page = f"""<!doctype html><html><head><title>Stowage dev login</title></head>
<body style="font-family:sans-serif;max-width:30em;margin:4em auto">
<h1>Stowage dev login</h1>
<p>This development authorization server signs in anyone by name. Never expose it.</p>
<form method="post" action="{html.escape(self.issuer)}/authorize">{hidden}
<label>User name <input name="username" value="dev-user" autofocus></label>
<button type="submit">Sign in</button></form></body></html>"""
        return HTMLResponse(page)

    async def _token(self, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        if form.get("grant_type") != "authorization_code":
            return _error("unsupported_grant_type", "only authorization_code")
        grant = self._codes.pop(form.get("code", ""), None)
        if grant is None or grant.expires < time.time():
            return _error("invalid_grant", "unknown or expired code")
        if form.get("client_id", grant.client_id) != grant.client_id:
            return _error("invalid_grant", "the code was issued to another client")
        if form.get("redirect_uri", grant.redirect_uri) != grant.redirect_uri:
            return _error("invalid_grant", "redirect_uri does not match")
        verifier = form.get("code_verifier", "")
        digest = hashlib.sha256(verifier.encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant.challenge:
            return _error("invalid_grant", "code_verifier does not match the code_challenge")
        resource = form.get("resource") or grant.resource
        if not resource:
            return _error("invalid_target", "name the MCP server in the resource parameter")
        token = sign_token(
            self.key,
            issuer=self.issuer,
            audience=resource,
            subject=grant.subject,
            scopes=grant.scope.split(),
            ttl=TOKEN_TTL,
            client_id=grant.client_id,
        )
        return JSONResponse(
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": TOKEN_TTL,
                "scope": grant.scope,
            },
            headers={"cache-control": "no-store"},
        )
