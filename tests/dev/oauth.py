"""An OAuth client, step by step, as an MCP client (ChatGPT, the Inspector) runs the flow."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

REDIRECT = "http://127.0.0.1:6274/oauth/callback"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def redirect_params(response: httpx.Response) -> dict[str, str]:
    """The query of a redirect back to the client, one value per name."""
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def discover(issuer: str) -> dict[str, Any]:
    """RFC 8414 metadata by path insertion, as MCP clients look it up."""
    parts = urlsplit(issuer)
    url = f"{parts.scheme}://{parts.netloc}/.well-known/oauth-authorization-server{parts.path}"
    metadata: dict[str, Any] = httpx.get(url).raise_for_status().json()
    return metadata


@dataclass
class Client:
    """One client of the authorization server described by ``metadata``."""

    metadata: dict[str, Any]
    client_id: str
    resource: str

    @classmethod
    def register(cls, metadata: dict[str, Any], resource: str, **extra: Any) -> Client:
        body = {"redirect_uris": [REDIRECT], "client_name": "Test Inspector", **extra}
        answer = httpx.post(metadata["registration_endpoint"], json=body)
        assert answer.status_code == 201, answer.text
        return cls(metadata, answer.json()["client_id"], resource)

    def authorization_query(self, challenge: str, **overrides: str) -> dict[str, str]:
        return {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": REDIRECT,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": "state-123",
            "scope": "stowage:read stowage:write",
            "resource": self.resource,
            **overrides,
        }

    def consent_page(self, challenge: str, **overrides: str) -> httpx.Response:
        query = self.authorization_query(challenge, **overrides)
        return httpx.get(self.metadata["authorization_endpoint"], params=query)

    def decide(
        self, challenge: str, user: str, decision: str = "allow", **kw: str
    ) -> httpx.Response:
        """Submit the consent form, as the browser would."""
        form = {**self.authorization_query(challenge, **kw), "username": user, "decision": decision}
        return httpx.post(self.metadata["authorization_endpoint"], data=form)

    def authorize(self, user: str = "alice", **overrides: str) -> tuple[str, str]:
        """Sign in and allow: (the code, its PKCE verifier)."""
        verifier, challenge = pkce()
        back = redirect_params(self.decide(challenge, user, **overrides))
        assert back["state"] == "state-123"
        assert back["iss"] == self.metadata["issuer"]
        return back["code"], verifier

    def exchange(self, code: str, verifier: str, **extra: str) -> httpx.Response:
        return httpx.post(
            self.metadata["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": code,
                "code_verifier": verifier,
                "redirect_uri": REDIRECT,
                "client_id": self.client_id,
                "resource": self.resource,
                **extra,
            },
        )

    def sign_in(self, user: str = "alice", **overrides: str) -> dict[str, Any]:
        """The whole flow: the token response."""
        code, verifier = self.authorize(user, **overrides)
        answer = self.exchange(code, verifier)
        assert answer.status_code == 200, answer.text
        tokens: dict[str, Any] = answer.json()
        return tokens

    def refresh(self, refresh_token: str, **extra: str) -> httpx.Response:
        return httpx.post(
            self.metadata["token_endpoint"],
            data={
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": self.client_id,
                "resource": self.resource,
                **extra,
            },
        )

    def revoke(self, token: str, **extra: str) -> httpx.Response:
        return httpx.post(
            self.metadata["revocation_endpoint"],
            data={"token": token, "client_id": self.client_id, **extra},
        )
