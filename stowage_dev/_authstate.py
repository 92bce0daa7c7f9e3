"""What the development authorization server remembers, kept in one JSON file.

Registered clients, grants (one per sign-in: a user's consent to a client for
a resource and scopes) and refresh tokens (stored as SHA-256 digests, never
as issued). Every change is written at once (to a temporary file, then
renamed, mode 0600), so a restart of ``stowage dev`` forgets nothing.
Authorization codes live for minutes and stay in memory.

Plain values and this one file; no HTTP, no OAuth rules here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: A refresh token not exchanged for this long expires; each rotation starts it anew.
REFRESH_TTL = 30 * 24 * 3600


def digest(secret: str) -> str:
    """How a refresh token or client secret is stored: its SHA-256, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class ClientRecord:
    """A client registered dynamically (RFC 7591)."""

    client_id: str
    client_name: str
    redirect_uris: tuple[str, ...]
    scope: str
    #: ``none`` (a public client, PKCE only), ``client_secret_post`` or ``client_secret_basic``.
    token_endpoint_auth_method: str = "none"
    secret_digest: str | None = None
    client_uri: str | None = None
    issued_at: int = 0


@dataclass(frozen=True)
class GrantRecord:
    """One sign-in: ``subject`` let ``client_id`` act on ``resource`` with ``scope``."""

    grant_id: str
    client_id: str
    subject: str
    scope: str
    resource: str
    created_at: int
    #: Why the grant ended, or None while it stands.
    revoked: str | None = None
    #: When the user signed in for it (its tokens' ``auth_time``); 0 in a record kept
    #: before this field existed, which :attr:`signed_in_at` reads as ``created_at``.
    authenticated_at: int = 0

    @property
    def signed_in_at(self) -> int:
        return self.authenticated_at or self.created_at


@dataclass(frozen=True)
class RefreshRecord:
    """A refresh token of a grant, by digest."""

    token_digest: str
    grant_id: str
    expires_at: int
    #: Exchanged for a newer one already: presenting it again is reuse.
    rotated: bool = False
    #: What a refresh with it may ask for: the scope of the token response it came in, so a
    #: refresh that narrowed the scope leaves a token that cannot widen it again. None (a
    #: record kept before this field existed): the grant's scope.
    scope: str | None = None


class AuthState:
    """The server's clients, grants and refresh tokens, persisted to ``path``."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._clients: dict[str, ClientRecord] = {}
        self._grants: dict[str, GrantRecord] = {}
        self._refresh: dict[str, RefreshRecord] = {}
        if path.exists():
            self._load(json.loads(path.read_text()))

    def _load(self, data: dict[str, Any]) -> None:
        for raw in data.get("clients", []):
            raw["redirect_uris"] = tuple(raw["redirect_uris"])
            client = ClientRecord(**raw)
            self._clients[client.client_id] = client
        for raw in data.get("grants", []):
            grant = GrantRecord(**raw)
            self._grants[grant.grant_id] = grant
        for raw in data.get("refresh_tokens", []):
            token = RefreshRecord(**raw)
            self._refresh[token.token_digest] = token

    def _save(self) -> None:
        now = time.time()
        self._refresh = {k: v for k, v in self._refresh.items() if v.expires_at > now}
        data = {
            "clients": [dataclasses.asdict(c) for c in self._clients.values()],
            "grants": [dataclasses.asdict(g) for g in self._grants.values()],
            "refresh_tokens": [dataclasses.asdict(t) for t in self._refresh.values()],
        }
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
        tmp.replace(self._path)

    def client(self, client_id: str) -> ClientRecord | None:
        return self._clients.get(client_id)

    def add_client(self, client: ClientRecord) -> None:
        with self._lock:
            self._clients[client.client_id] = client
            self._save()

    def grant(self, grant_id: str) -> GrantRecord | None:
        return self._grants.get(grant_id)

    def add_grant(self, grant: GrantRecord) -> None:
        with self._lock:
            self._grants[grant.grant_id] = grant
            self._save()

    def revoke_grant(self, grant_id: str, reason: str) -> None:
        """End the grant: none of its refresh tokens is accepted again."""
        with self._lock:
            grant = self._grants.get(grant_id)
            if grant is None or grant.revoked:
                return
            self._grants[grant_id] = dataclasses.replace(grant, revoked=reason)
            self._refresh = {k: v for k, v in self._refresh.items() if v.grant_id != grant_id}
            self._save()

    def refresh_token(self, token: str) -> RefreshRecord | None:
        return self._refresh.get(digest(token))

    def add_refresh_token(
        self, token: str, grant_id: str, scope: str, rotates: str | None = None
    ) -> None:
        """Keep ``token`` for ``grant_id``, good for refreshes of at most ``scope``.

        ``rotates``, the older token it replaces, is marked exchanged.
        """
        with self._lock:
            if rotates is not None and (old := self._refresh.get(digest(rotates))) is not None:
                self._refresh[old.token_digest] = dataclasses.replace(old, rotated=True)
            expires_at = int(time.time()) + REFRESH_TTL
            record = RefreshRecord(digest(token), grant_id, expires_at, scope=scope)
            self._refresh[record.token_digest] = record
            self._save()
