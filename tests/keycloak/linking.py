"""ChatGPT's side of linking an app, over plain HTTP: discovery, sign-in, tokens.

What a connector does with a tenant's MCP URL and nothing else: the gateway's 401
names the protected resource metadata, which names the authorization server, whose
metadata names its endpoints; then authorization code + PKCE S256 with ``resource``
(RFC 8707), Keycloak's login form filled in as a browser would (httpx, cookies kept),
the code exchanged for tokens, and refreshes. Every step is kept in a transcript
(method, URL, status) so a test can show the whole exchange.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from stowage_testing.gateway import post, rpc

#: The redirect URI the realm's ``chatgpt`` client allows for tests (loopback).
REDIRECT = "http://127.0.0.1:6274/oauth/callback"
CLIENT_ID = "chatgpt"
PASSWORD = "correct horse battery staple"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def _loopback_cookies(client: httpx.Client) -> str:
    """Every cookie the browser holds, as a ``Cookie`` header.

    Keycloak marks its cookies ``Secure``; browsers send those to http://127.0.0.1
    (a potentially trustworthy origin), Python's cookie jar only over https.
    """
    return "; ".join(f"{c.name}={c.value}" for c in client.cookies.jar)


def _page_says(text: str) -> str:
    """What a Keycloak page says: its title, alerts and form fields (for a failing assertion)."""
    title = re.findall(r"<title>(.*?)</title>", text, re.S)
    alerts = re.findall(
        r'class="[^"]*(?:alert|feedback|kc-feedback-text|error)[^"]*"[^>]*>(.*?)<', text, re.S
    )
    fields = re.findall(r'<input[^>]*name="([^"]+)"', text)
    return f"title={title} alerts={[a.strip() for a in alerts if a.strip()]} fields={fields}"


def _challenge_param(header: str, name: str) -> str | None:
    found = re.search(rf'{name}="([^"]*)"', header)
    return found.group(1) if found else None


@dataclass
class Linking:
    """One connector linking one MCP URL; ``transcript`` lists every HTTP exchange."""

    mcp_url: str
    transcript: list[tuple[str, str, int]] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    resource_metadata: dict[str, Any] = field(default_factory=dict)

    def _note(self, what: str, response: httpx.Response) -> httpx.Response:
        self.transcript.append(
            (what, f"{response.request.method} {response.request.url}", response.status_code)
        )
        return response

    def discover(self) -> dict[str, Any]:
        """401 → protected resource metadata → authorization server metadata."""
        refused = self._note("MCP call without a token", post(self.mcp_url, rpc("initialize", {})))
        assert refused.status_code == 401, refused.text
        pointer = _challenge_param(refused.headers["www-authenticate"], "resource_metadata")
        assert pointer, refused.headers["www-authenticate"]
        resource = self._note("protected resource metadata", httpx.get(pointer, timeout=10))
        assert resource.status_code == 200, resource.text
        self.resource_metadata = resource.json()
        assert self.resource_metadata["resource"] == self.mcp_url
        issuer: str = self.resource_metadata["authorization_servers"][0]
        # As MCP clients look it up: RFC 8414 path insertion, then the OIDC forms.
        parts = urlsplit(issuer)
        origin = f"{parts.scheme}://{parts.netloc}"
        for url in (
            f"{origin}/.well-known/oauth-authorization-server{parts.path}",
            f"{origin}/.well-known/openid-configuration{parts.path}",
            f"{issuer.rstrip('/')}/.well-known/openid-configuration",
        ):
            answer = self._note("authorization server metadata", httpx.get(url, timeout=10))
            if answer.status_code == 200:
                self.metadata = answer.json()
                break
        assert self.metadata.get("issuer") == issuer, self.metadata
        assert "S256" in self.metadata["code_challenge_methods_supported"]
        return self.metadata

    def sign_in(
        self,
        username: str,
        password: str = PASSWORD,
        *,
        browser: httpx.Client | None = None,
        scope: str | None = None,
        prompt: str | None = None,
    ) -> dict[str, Any]:
        """Authorization code + PKCE through Keycloak's login form: the token response.

        ``browser`` keeps Keycloak's cookies between sign-ins (its SSO session), as a
        user's browser does; ``prompt="login"`` asks for the password again anyway.
        """
        if not self.metadata:
            self.discover()
        verifier, challenge = pkce()
        state = secrets.token_urlsafe(8)
        query = {
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": state,
            "scope": scope or " ".join(self.resource_metadata.get("scopes_supported", [])),
            "resource": self.mcp_url,
        }
        if prompt:
            query["prompt"] = prompt
        own = browser is None
        client = browser or httpx.Client(timeout=30)
        try:
            page = self._note(
                "authorization request",
                client.get(
                    self.metadata["authorization_endpoint"],
                    params=query,
                    headers={"cookie": _loopback_cookies(client)},
                ),
            )
            if page.status_code == 200:
                action = re.search(r'action="([^"]*/login-actions/authenticate[^"]*)"', page.text)
                assert action, page.text[:2000]
                page = self._note(
                    "login form submitted",
                    client.post(
                        html.unescape(action.group(1)),
                        data={"username": username, "password": password, "credentialId": ""},
                        headers={"cookie": _loopback_cookies(client)},
                    ),
                )
            assert page.status_code == 302, _page_says(page.text)
            location = page.headers["location"]
            assert location.startswith(REDIRECT), location
            back = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
            assert back["state"] == state and back["iss"] == self.metadata["issuer"], back
        finally:
            if own:
                client.close()
        answer = self._note(
            "token request (code + verifier)",
            httpx.post(
                self.metadata["token_endpoint"],
                data={
                    "grant_type": "authorization_code",
                    "code": back["code"],
                    "code_verifier": verifier,
                    "redirect_uri": REDIRECT,
                    "client_id": CLIENT_ID,
                    "resource": self.mcp_url,
                },
                timeout=30,
            ),
        )
        assert answer.status_code == 200, answer.text
        tokens: dict[str, Any] = answer.json()
        return tokens

    def refresh(self, refresh_token: str) -> httpx.Response:
        return self._note(
            "token request (refresh)",
            httpx.post(
                self.metadata["token_endpoint"],
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": refresh_token,
                    "client_id": CLIENT_ID,
                    "resource": self.mcp_url,
                },
                timeout=30,
            ),
        )

    def refreshed(self, tokens: dict[str, Any]) -> dict[str, Any]:
        answer = self.refresh(tokens["refresh_token"])
        assert answer.status_code == 200, answer.text
        fresh: dict[str, Any] = answer.json()
        return fresh

    def call(self, what: str, token: str, body: dict[str, Any]) -> httpx.Response:
        return self._note(what, post(self.mcp_url, body, token))


def claims(token: str) -> dict[str, Any]:
    """A JWT's payload, unverified (the gateway is what checks it)."""
    import json

    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded
