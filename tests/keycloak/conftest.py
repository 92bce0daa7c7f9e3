"""The Keycloak tier: a real Keycloak as two tenants' authorization server, started once.

One Keycloak for the session (its start is most of the tier's time), with the realm
of ``tests/keycloak/realm.json`` imported twice: ``stowage`` for tenant ``acme``
(JWTs checked against the realm's JWKS) and ``stowage-introspected`` for tenant
``intro`` (every token checked at the realm's introspection endpoint, the client
secret read from the gateway's ``--secrets-dir`` as the chart mounts it). One
gateway serves both, each tenant on its own worker on PostgreSQL.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stowage_testing.gateway import COLLECTIONS, WORKER_POLICY, GatewayProcess, running_gateway
from stowage_testing.keycloak import Keycloak, running_keycloak
from tests.gateway.conftest import WorkerFor
from tests.gateway.conftest import worker_for as worker_for  # the fixture, for this tier too
from tests.keycloak.linking import PASSWORD

REALM_FILE = Path(__file__).with_name("realm.json")
#: How the chart mounts an introspection client secret: <secrets dir>/<Secret name>/<key>.
SECRET_NAME, SECRET_KEY = "keycloak-introspection", "client-secret"
#: An unknown kid refetches the JWKS at most this often in this tier, seconds.
JWKS_MIN_REFRESH = 2.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def keycloak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keycloak]:
    with running_keycloak(tmp_path_factory.mktemp("keycloak")) as server:
        print(f"\nKeycloak answered {server.start_seconds:.1f}s after its start", file=sys.stderr)
        yield server


@dataclass(frozen=True)
class Tier:
    keycloak: Keycloak
    gateway: GatewayProcess
    #: Each tenant's worker address.
    workers: dict[str, str]
    #: Realm of tenant acme (JWKS) and of tenant intro (introspection).
    realm: str = "stowage"
    introspected_realm: str = "stowage-introspected"

    @property
    def issuer(self) -> str:
        return self.keycloak.issuer(self.realm)

    def url(self, tenant: str = "acme") -> str:
        return self.gateway.url(tenant)

    def new_user(self, realm: str | None = None) -> str:
        """A new user (password :data:`PASSWORD`): no test's revocation touches another's."""
        username = f"user-{secrets.token_hex(4)}"
        created = self.keycloak.admin().post(
            f"/{realm or self.realm}/users",
            json={
                "username": username,
                "enabled": True,
                "email": f"{username}@acme.example",
                "emailVerified": True,
                "firstName": "Test",
                "lastName": username,
                "credentials": [{"type": "password", "value": PASSWORD, "temporary": False}],
            },
        )
        assert created.status_code == 201, created.text
        return username

    def user_id(self, username: str, realm: str | None = None) -> str:
        found = self.keycloak.admin().get(
            f"/{realm or self.realm}/users", params={"username": username, "exact": "true"}
        )
        [user] = found.json()
        user_id: str = user["id"]
        return user_id


def _tenant(
    name: str, endpoint: str, issuer: str, audience: str, **auth: object
) -> dict[str, object]:
    return {
        "name": name,
        "endpoint": endpoint,
        "auth": {"issuer": issuer, "audience": audience, "requireAuthTime": True, **auth},
        "collections": COLLECTIONS,
        "retention": WORKER_POLICY["retention"],
    }


@pytest.fixture(scope="session")
def tier(
    keycloak: Keycloak, worker_for: WorkerFor, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Tier]:
    workdir = tmp_path_factory.mktemp("keycloak-gateway")
    secrets_dir = workdir / "secrets"
    introspection_secret = secrets.token_urlsafe(24)
    (secrets_dir / SECRET_NAME).mkdir(parents=True)
    (secrets_dir / SECRET_NAME / SECRET_KEY).write_text(introspection_secret + "\n")
    args = (
        "--jwks-min-refresh", str(JWKS_MIN_REFRESH),
        "--secrets-dir", str(secrets_dir),
        "--revocation-sync-interval", "0.2",
        "--introspection-cache-seconds", "1",
        "--token-leeway", "30",
    )  # fmt: skip
    gateway = GatewayProcess(workdir=workdir, extra_args=args)
    workers = {name: worker_for(name).address for name in ("acme", "intro")}
    tier = Tier(keycloak, gateway, workers)
    for realm, tenant in ((tier.realm, "acme"), (tier.introspected_realm, "intro")):
        keycloak.import_realm(
            REALM_FILE,
            realm_name=realm,
            MCP_URL=gateway.url(tenant),
            INTROSPECTION_SECRET=introspection_secret,
            USER_PASSWORD=PASSWORD,
        )
    intro_issuer = keycloak.issuer(tier.introspected_realm)
    introspection = {
        "endpoint": f"{intro_issuer}/protocol/openid-connect/token/introspect",
        "clientId": "stowage-gateway",
        "clientSecretRef": {"name": SECRET_NAME, "key": SECRET_KEY},
        "allTokens": True,
    }
    tenants = [
        _tenant("acme", workers["acme"], tier.issuer, gateway.url("acme")),
        _tenant(
            "intro", workers["intro"], intro_issuer, gateway.url("intro"),
            introspection=introspection,
        ),
    ]  # fmt: skip
    with running_gateway(workdir, tenants, port=gateway.port, extra_args=args) as started:
        yield Tier(keycloak, started, workers)
