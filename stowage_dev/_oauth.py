"""authlib's authorization server, wired to the dev platform's state and keys.

authlib implements the protocol (RFC 6749 authorization code and refresh
token grants, RFC 7636 PKCE, RFC 7591 registration, RFC 7009 revocation); it
has no Starlette integration, so :class:`HttpRequest` is a request already
read from Starlette and :meth:`OAuthServer.handle_response` builds Starlette
responses. What authlib lacks is written here: resource indicators (RFC 8707,
limited to the resources this server serves), refresh token rotation with
reuse detection (a refresh token presented twice revokes its grant; each one
refreshes at most the scope it was issued with, so a narrowing sticks), scopes
limited to the ones the gateway knows (unknown ones are dropped, and a request
left with none is refused), and public clients named by a client ID metadata
document (looked up from :class:`ClientDocuments`, fetched beforehand).

Synchronous, as authlib is: the routes read the request, fetch any client
metadata document, then call in here.
"""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from authlib.common.security import generate_token
from authlib.oauth2 import rfc6749, rfc7009, rfc7591, rfc7636
from authlib.oauth2.rfc6749 import grants
from joserfc.jwk import RSAKey
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response

from stowage_dev._authstate import (
    AuthState,
    ClientRecord,
    GrantRecord,
    RefreshRecord,
    digest,
)
from stowage_dev._client_documents import (
    REDIRECT_URI_RULE,
    ClientDocuments,
    is_document_url,
    redirect_uri_allowed,
)
from stowage_dev._keys import DEFAULT_SCOPES, sign_token

log = logging.getLogger(__name__)

#: Lifetime of an access token (a JWT the gateway checks by itself), seconds.
ACCESS_TTL = 3600
#: Lifetime of an authorization code, seconds.
CODE_TTL = 300
KNOWN_SCOPES = frozenset(DEFAULT_SCOPES)
AUTH_METHODS = ("none", "client_secret_post", "client_secret_basic")
GRANT_TYPES = ("authorization_code", "refresh_token")


class InvalidTargetError(rfc6749.OAuth2Error):  # type: ignore[misc]
    """RFC 8707: the ``resource`` is not one this server issues tokens for."""

    error = "invalid_target"


class UnsupportedTokenTypeError(rfc6749.OAuth2Error):  # type: ignore[misc]
    """RFC 7009: this server cannot revoke that kind of token (400, not authlib's 401)."""

    error = "unsupported_token_type"


def known_scopes(scope: str | None) -> list[str]:
    """The scopes of ``scope`` this server knows, in order, once each."""
    return [s for s in dict.fromkeys((scope or "").split()) if s in KNOWN_SCOPES]


# -- a request, read from the web framework beforehand ------------------------------------


@dataclass(frozen=True)
class HttpRequest:
    """An HTTP request, read in full: what authlib's request wrappers are built from."""

    method: str
    uri: str
    headers: Headers
    query: Sequence[tuple[str, str]] = ()
    form: Sequence[tuple[str, str]] = ()
    json: Any = None


class _Payload(rfc6749.OAuth2Payload):  # type: ignore[misc]
    def __init__(self, items: Sequence[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in items:
            self._datalist[key].append(value)
        self._data = {key: values[-1] for key, values in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class _OAuth2Request(rfc6749.OAuth2Request):  # type: ignore[misc]
    def __init__(self, request: HttpRequest) -> None:
        super().__init__(request.method, request.uri, headers=request.headers)
        self.payload = _Payload([*request.query, *request.form])
        self._args = dict(request.query)
        self._form = dict(request.form)

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


class _JsonPayload(rfc6749.JsonPayload):  # type: ignore[misc]
    def __init__(self, data: Any) -> None:
        self._data = data

    @property
    def data(self) -> Any:
        return self._data


class _JsonRequest(rfc6749.JsonRequest):  # type: ignore[misc]
    def __init__(self, request: HttpRequest) -> None:
        super().__init__(request.method, request.uri, request.headers)
        self.payload = _JsonPayload(request.json)


# -- the models authlib asks for -----------------------------------------------------------


class OAuthClient(rfc6749.ClientMixin):  # type: ignore[misc]
    def __init__(self, record: ClientRecord) -> None:
        self.record = record

    def get_client_id(self) -> str:
        return self.record.client_id

    def get_default_redirect_uri(self) -> str | None:
        uris = self.record.redirect_uris
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """The known scopes asked for (all the client may have when none are); None: none left."""
        allowed = known_scopes(self.record.scope) or list(DEFAULT_SCOPES)
        wanted = known_scopes(scope) if scope else allowed
        granted = [s for s in wanted if s in allowed]
        return " ".join(granted) or None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.record.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        stored = self.record.secret_digest
        return stored is not None and secrets.compare_digest(stored, digest(client_secret))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.record.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in GRANT_TYPES


@dataclass
class AuthorizationCode(rfc6749.AuthorizationCodeMixin):  # type: ignore[misc]
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    subject: str
    resource: str | None
    code_challenge: str
    code_challenge_method: str
    #: When the user signed in (clicked Allow) for this code: the grant's ``auth_time``.
    authenticated_at: int = field(default_factory=lambda: int(time.time()))
    expires_at: float = field(default_factory=lambda: time.time() + CODE_TTL)

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


@dataclass
class RefreshToken(rfc6749.TokenMixin):  # type: ignore[misc]
    presented: str
    record: RefreshRecord
    grant: GrantRecord

    def check_client(self, client: OAuthClient) -> bool:
        return self.grant.client_id == client.get_client_id()

    def get_scope(self) -> str:
        """What this token may refresh: never more than the token response it came in."""
        return self.record.scope if self.record.scope is not None else self.grant.scope

    def get_expires_in(self) -> int:
        return max(0, self.record.expires_at - int(time.time()))

    def is_expired(self) -> bool:
        return self.record.expires_at <= time.time()

    def is_revoked(self) -> bool:
        return self.grant.revoked is not None


@dataclass(frozen=True)
class Principal:
    """Whom a token is for: the user, the MCP server (audience), and the grant it belongs to.

    Every token of a grant carries the grant's sign-in time as ``auth_time`` and
    its id as ``sid``: a refresh keeps both, a new sign-in makes a new grant.
    """

    subject: str
    resource: str
    grant_id: str
    authenticated_at: int


# -- grants and endpoints ------------------------------------------------------------------


class PkceS256(rfc7636.CodeChallenge):  # type: ignore[misc]
    """PKCE required of every client, S256 only."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge") or data.get("code_challenge_method") != "S256":
            raise rfc6749.InvalidRequestError(
                "PKCE with code_challenge_method=S256 is required", redirect_uri=redirect_uri
            )
        super().validate_code_challenge(grant, redirect_uri)


def _validate_resource(grant: Any, redirect_uri: str) -> None:
    """RFC 8707 at the authorization endpoint: at most one ``resource``, one this server serves."""
    server: OAuthServer = grant.server
    resources = grant.request.payload.datalist.get("resource", [])
    if len(resources) > 1:
        raise InvalidTargetError("name one resource per request")
    if resources:
        server.check_resource(resources[0])


class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = list(AUTH_METHODS)

    def __init__(self, request: Any, server: OAuthServer) -> None:
        super().__init__(request, server)
        self.register_hook("after_validate_authorization_request_payload", _validate_resource)

    def save_authorization_code(self, code: str, request: Any) -> None:
        data = request.payload.data
        self.server.codes[code] = AuthorizationCode(
            code=code,
            client_id=request.client.get_client_id(),
            redirect_uri=data.get("redirect_uri") or request.client.get_default_redirect_uri(),
            scope=request.scope,
            subject=request.user,
            resource=data.get("resource"),
            code_challenge=data["code_challenge"],
            code_challenge_method=data["code_challenge_method"],
        )

    def query_authorization_code(self, code: str, client: OAuthClient) -> AuthorizationCode | None:
        # Spent on first presentation, whatever follows: a failed PKCE check
        # leaves nothing to try again.
        found: AuthorizationCode | None = self.server.codes.pop(code, None)
        if found is None or found.client_id != client.get_client_id():
            return None
        return found if found.expires_at > time.time() else None

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        pass  # spent already, in query_authorization_code

    def authenticate_user(self, authorization_code: AuthorizationCode) -> Principal:
        requested = self.request.form.get("resource")
        bound = authorization_code.resource
        if requested and bound and requested != bound:
            raise InvalidTargetError("resource differs from the authorization request's")
        resource = bound or requested
        if not resource:
            raise InvalidTargetError("name the MCP server in the resource parameter")
        self.server.check_resource(resource)
        return Principal(
            authorization_code.subject,
            resource,
            uuid.uuid4().hex,
            authorization_code.authenticated_at,
        )


class RotatingRefreshGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    """Each refresh answers a new refresh token; the old one presented again revokes the grant."""

    TOKEN_ENDPOINT_AUTH_METHODS = list(AUTH_METHODS)
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshToken | None:
        state: AuthState = self.server.state
        record = state.refresh_token(refresh_token)
        grant = state.grant(record.grant_id) if record is not None else None
        if record is None or grant is None:
            raise rfc6749.InvalidGrantError(
                "unknown, expired or revoked refresh token; sign in again"
            )
        if grant.revoked:
            raise rfc6749.InvalidGrantError("the grant was revoked; sign in again")
        if record.rotated:
            state.revoke_grant(grant.grant_id, "refresh token reused")
            log.warning(
                "a refresh token of grant %s was presented again after rotation: grant revoked",
                grant.grant_id,
            )
            raise rfc6749.InvalidGrantError(
                "this refresh token was already used, so its grant is revoked; sign in again"
            )
        token = RefreshToken(refresh_token, record, grant)
        if token.is_expired():
            raise rfc6749.InvalidGrantError("the refresh token expired; sign in again")
        return token

    def _validate_token_scope(self, token: RefreshToken) -> None:
        # Unknown scopes are dropped here as everywhere; the rest must have been granted.
        scope = self.request.payload.scope
        if not scope:
            return
        wanted = known_scopes(scope)
        if not wanted or not set(wanted) <= set(token.get_scope().split()):
            raise rfc6749.InvalidScopeError()

    def authenticate_user(self, refresh_token: RefreshToken) -> Principal:
        grant = refresh_token.grant
        requested = self.request.form.get("resource")
        if requested and requested != grant.resource:
            raise InvalidTargetError("resource differs from the grant's")
        return Principal(grant.subject, grant.resource, grant.grant_id, grant.signed_in_at)

    def revoke_old_credential(self, refresh_token: RefreshToken) -> None:
        pass  # marked rotated in save_token, in the same write as its successor


class Revocation(rfc7009.RevocationEndpoint):  # type: ignore[misc]
    """RFC 7009 for refresh tokens: revoking one ends its grant."""

    CLIENT_AUTH_METHODS = list(AUTH_METHODS)

    def query_token(self, token_string: str, token_type_hint: str | None) -> RefreshToken | None:
        state: AuthState = self.server.state
        record = state.refresh_token(token_string)
        grant = state.grant(record.grant_id) if record is not None else None
        if record is None or grant is None:
            if token_string.count(".") == 2:
                raise UnsupportedTokenTypeError(
                    "access tokens are JWTs valid until they expire; revoke the refresh token"
                )
            return None  # unknown or already revoked: nothing to do (RFC 7009 section 2.2)
        return RefreshToken(token_string, record, grant)

    def revoke_token(self, token: RefreshToken, request: Any) -> None:
        self.server.state.revoke_grant(token.grant.grant_id, "revoked by the client")
        log.info("grant %s revoked by its client", token.grant.grant_id)


class Registration(rfc7591.ClientRegistrationEndpoint):  # type: ignore[misc]
    """Open dynamic registration; public clients unless a secret method is asked for.

    Redirect URIs use https, or plain http to a loopback host (``invalid_redirect_uri``
    otherwise, RFC 7591 section 3.2.2).
    """

    def authenticate_token(self, request: Any) -> bool:
        return True  # anyone may register with a development server

    def get_server_metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = self.server.metadata
        return metadata

    def extract_client_metadata(self, request: Any) -> dict[str, Any]:
        data = request.payload.data
        if not isinstance(data, dict):
            raise rfc7591.InvalidClientMetadataError("the body must be a JSON object")
        uris = data.get("redirect_uris")
        if not isinstance(uris, list) or not uris or not all(isinstance(u, str) for u in uris):
            raise rfc7591.InvalidRedirectURIError("redirect_uris must be a non-empty list")
        for uri in uris:
            if not redirect_uri_allowed(uri):
                raise rfc7591.InvalidRedirectURIError(f"redirect URI {uri}: {REDIRECT_URI_RULE}")
        data.setdefault("token_endpoint_auth_method", "none")
        data["scope"] = " ".join(known_scopes(data.get("scope"))) or " ".join(DEFAULT_SCOPES)
        metadata: dict[str, Any] = super().extract_client_metadata(request)
        metadata["grant_types"] = list(GRANT_TYPES)
        metadata["response_types"] = ["code"]
        return metadata

    def generate_client_id(self, request: Any) -> str:
        return secrets.token_urlsafe(16)

    def generate_client_secret(self, request: Any) -> str | None:
        public = request.payload.data.get("token_endpoint_auth_method") == "none"
        return None if public else secrets.token_urlsafe(32)

    def create_registration_response(self, request: Any) -> tuple[int, dict[str, Any], Any]:
        status, body, headers = super().create_registration_response(request)
        if body.get("client_secret") is None:
            body.pop("client_secret", None)
            body.pop("client_secret_expires_at", None)
        return status, body, headers

    def save_client(
        self, client_info: Mapping[str, Any], client_metadata: Mapping[str, Any], request: Any
    ) -> OAuthClient:
        secret = client_info.get("client_secret")
        record = ClientRecord(
            client_id=client_info["client_id"],
            client_name=str(client_metadata.get("client_name") or "unnamed client"),
            redirect_uris=tuple(client_metadata["redirect_uris"]),
            scope=client_metadata["scope"],
            token_endpoint_auth_method=client_metadata["token_endpoint_auth_method"],
            secret_digest=digest(secret) if secret else None,
            client_uri=client_metadata.get("client_uri"),
            issued_at=client_info["client_id_issued_at"],
        )
        self.server.state.add_client(record)
        log.info("client %s registered: %s", record.client_id, record.client_name)
        return OAuthClient(record)


# -- the server ----------------------------------------------------------------------------


class OAuthServer(rfc6749.AuthorizationServer):  # type: ignore[misc]
    """authlib's server with this platform's state, key, resources and documents."""

    def __init__(
        self,
        *,
        key: Callable[[], RSAKey],
        issuer: str,
        resources: Collection[str],
        state: AuthState,
        documents: ClientDocuments,
        metadata: dict[str, Any],
    ) -> None:
        super().__init__(scopes_supported=list(DEFAULT_SCOPES))
        self._key = key
        self.issuer = issuer
        self.resources = resources
        self.state = state
        self.documents = documents
        self.metadata = metadata
        self.codes: dict[str, AuthorizationCode] = {}
        self.register_token_generator("default", self._generate_token)
        self.register_grant(CodeGrant, [PkceS256(required=True)])
        self.register_grant(RotatingRefreshGrant)
        self.register_endpoint(Revocation)
        self.register_endpoint(Registration)

    def check_resource(self, resource: str) -> None:
        if resource not in self.resources:
            raise InvalidTargetError("this server issues no tokens for that resource")

    def query_client(self, client_id: str) -> OAuthClient | None:
        if is_document_url(client_id):
            record = self.documents.cached(client_id)
        else:
            record = self.state.client(client_id)
        return OAuthClient(record) if record is not None else None

    def validate_requested_scope(self, scope: str | None) -> None:
        pass  # unknown scopes are dropped (OAuthClient.get_allowed_scope), not refused

    def _generate_token(
        self,
        grant_type: str,
        client: OAuthClient,
        user: Principal,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        granted = client.get_allowed_scope(scope)
        if granted is None:
            raise rfc6749.InvalidScopeError()
        token: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": sign_token(
                self._key(),
                issuer=self.issuer,
                audience=user.resource,
                subject=user.subject,
                scopes=granted.split(),
                ttl=ACCESS_TTL,
                client_id=client.get_client_id(),
                auth_time=user.authenticated_at,
                session=user.grant_id,
            ),
            "expires_in": ACCESS_TTL,
            "scope": granted,
        }
        if include_refresh_token:
            token["refresh_token"] = generate_token(48)
        return token

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        principal: Principal = request.user
        previous: RefreshToken | None = request.refresh_token
        if previous is None:
            self.state.add_grant(
                GrantRecord(
                    grant_id=principal.grant_id,
                    client_id=request.client.get_client_id(),
                    subject=principal.subject,
                    scope=token["scope"],
                    resource=principal.resource,
                    created_at=int(time.time()),
                    authenticated_at=principal.authenticated_at,
                )
            )
        if "refresh_token" in token:
            self.state.add_refresh_token(
                token["refresh_token"],
                principal.grant_id,
                scope=token["scope"],
                rotates=previous.presented if previous is not None else None,
            )

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass

    def create_oauth2_request(self, request: HttpRequest) -> _OAuth2Request:
        return _OAuth2Request(request)

    def create_json_request(self, request: HttpRequest) -> _JsonRequest:
        return _JsonRequest(request)

    def handle_response(
        self, status: int, body: Any, headers: Sequence[tuple[str, str]]
    ) -> Response:
        header_map = {k.lower(): v for k, v in headers}
        if isinstance(body, dict):
            header_map.pop("content-type", None)
            return JSONResponse(body, status_code=status, headers=header_map)
        return Response(body or b"", status_code=status, headers=header_map)
