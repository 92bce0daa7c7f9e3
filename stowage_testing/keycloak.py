"""Keycloak as a tenant's authorization server in tests: a real server on loopback.

``hack/keycloak.sh`` installs the pinned distribution (``hack/keycloak/versions.env``)
into ``$STOWAGE_TOOLS_DIR/keycloak-<version>`` (default ``/var/cache/stowage/tools``),
built for ``start --optimized``, with a migrated template database and a
class-data-sharing archive beside it. :func:`running_keycloak` copies the template
into a directory of its own, starts Keycloak on a free loopback port with the same
JVM flags (a Java 21+ JDK found as the script finds it) and waits until it answers;
:meth:`Keycloak.import_realm` imports a realm file through the admin REST API.
A missing Keycloak or Java fails the test (``stowage_testing.tools.missing``), never
skips it.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from stowage_testing.tools import free_port, missing, terminate

REPO = Path(__file__).resolve().parents[1]
PINS = REPO / "hack" / "keycloak" / "versions.env"
HOW = "run `hack/keycloak.sh` (it installs Keycloak from Maven Central into the tools cache)"
#: The bootstrap admin of the template database (hack/keycloak.sh): loopback tests only.
ADMIN_USER = "admin"
ADMIN_PASSWORD = "stowage-tests-admin"
#: As hack/keycloak.sh starts it: C1 only and a small heap start faster on two cores.
JVM_FLAGS = ("-XX:TieredStopAtLevel=1",)
HEAP = "-Xms128m -Xmx768m"


def pins() -> dict[str, str]:
    """``hack/keycloak/versions.env`` as a dictionary."""
    found: dict[str, str] = {}
    for line in PINS.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            found[name.strip()] = value.strip()
    return found


def keycloak_home() -> Path:
    """Where ``hack/keycloak.sh`` puts the pinned Keycloak."""
    root = Path(os.environ.get("STOWAGE_TOOLS_DIR") or "/var/cache/stowage/tools")
    return root / f"keycloak-{pins()['KEYCLOAK_VERSION']}"


def _java_major(java: Path) -> int | None:
    try:
        ran = subprocess.run(
            [str(java), "-XshowSettings:properties", "-version"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"java\.specification\.version = (\d+)", ran.stderr)
    return int(found.group(1)) if found else None


def java_home() -> Path | None:
    """A JDK new enough for Keycloak: KEYCLOAK_JAVA_HOME, JAVA_HOME, else under /usr/lib/jvm."""
    least = int(pins()["KEYCLOAK_MIN_JAVA"])
    named = [os.environ.get("KEYCLOAK_JAVA_HOME"), os.environ.get("JAVA_HOME")]
    candidates = [Path(p) for p in named if p]
    jvms = Path("/usr/lib/jvm")
    if jvms.is_dir():
        candidates += sorted((p for p in jvms.iterdir() if p.is_dir()), reverse=True)
    for home in candidates:
        java = home / "bin" / "java"
        if java.is_file() and (_java_major(java) or 0) >= least:
            return home
    return None


@dataclass
class Keycloak:
    """One running Keycloak: its base URL and an admin REST client."""

    base: str
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    #: Seconds from the start of the JVM until the server answered.
    start_seconds: float = 0.0
    _admin: httpx.Client | None = field(default=None, repr=False)
    _admin_at: float = field(default=0.0, repr=False)

    @property
    def log_file(self) -> Path:
        return self.workdir / "keycloak.log"

    def logs(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def issuer(self, realm: str) -> str:
        return f"{self.base}/realms/{realm}"

    def requests_to(self, path: str) -> int:
        """How many requests for ``path`` (no query) Keycloak has logged so far."""
        return sum(1 for line in self.logs().splitlines() if f" {path} HTTP/" in line)

    def admin(self) -> httpx.Client:
        """An httpx client for ``/admin/realms``; its admin token is renewed every 30 s."""
        if self._admin is not None and time.monotonic() - self._admin_at < 30:
            return self._admin
        answer = httpx.post(
            f"{self.base}/realms/master/protocol/openid-connect/token",
            data={
                "grant_type": "password",
                "client_id": "admin-cli",
                "username": ADMIN_USER,
                "password": ADMIN_PASSWORD,
            },
            timeout=30,
        )
        answer.raise_for_status()
        token = answer.json()["access_token"]
        if self._admin is not None:
            self._admin.close()
        self._admin = httpx.Client(
            base_url=f"{self.base}/admin/realms",
            headers={"authorization": f"Bearer {token}"},
            timeout=30,
        )
        self._admin_at = time.monotonic()
        return self._admin

    def import_realm(
        self, realm_file: Path, *, realm_name: str | None = None, **replacements: str
    ) -> dict[str, Any]:
        """Import the realm in ``realm_file`` (its ``${NAME}`` placeholders replaced first).

        ``realm_name`` renames it (one file, several realms). An existing realm of
        that name is deleted first, so a session may import again.
        """
        text = realm_file.read_text()
        for name, value in replacements.items():
            text = text.replace("${" + name + "}", value)
        unreplaced = re.findall(r"\$\{[A-Z_]+\}", text)
        assert not unreplaced, f"{realm_file}: no value given for {sorted(set(unreplaced))}"
        realm: dict[str, Any] = json.loads(text)
        if realm_name is not None:
            realm["realm"] = realm_name
        admin = self.admin()
        if admin.get(f"/{realm['realm']}").status_code == 200:
            admin.delete(f"/{realm['realm']}").raise_for_status()
        created = admin.post("", json=copy.deepcopy(realm))
        assert created.status_code == 201, created.text
        return realm

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/realms/master", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def running_keycloak(workdir: Path, *, timeout: float = 120.0) -> Iterator[Keycloak]:
    """Keycloak on a free loopback port, its database a copy of the cached template."""
    home = keycloak_home()
    template = home / "stowage" / "template.mv.db"
    if not (home / "bin" / "kc.sh").is_file() or not template.is_file():
        missing(f"Keycloak {pins()['KEYCLOAK_VERSION']} ({home})", HOW)
    java = java_home()
    if java is None:
        missing(f"a Java {pins()['KEYCLOAK_MIN_JAVA']}+ JDK", "set KEYCLOAK_JAVA_HOME")
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, workdir / "db.mv.db")
    port = free_port()
    keycloak = Keycloak(base=f"http://127.0.0.1:{port}", workdir=workdir)
    archive = home / "stowage" / "keycloak.jsa"
    jvm = [
        *JVM_FLAGS,
        # Read-only use of the install's archive: a JVM that cannot use it runs without it.
        f"-XX:SharedArchiveFile={archive}",
        "-Xshare:auto",
        f"-Dquarkus.transaction-manager.object-store.directory={workdir / 'transaction-logs'}",
    ]
    env = {
        **os.environ,
        "JAVA_HOME": str(java),
        "JAVA_OPTS_KC_HEAP": HEAP,
        "JAVA_OPTS_APPEND": " ".join(jvm),
    }
    args = [
        str(home / "bin" / "kc.sh"), "start", "--optimized",
        "--cache=local", "--http-enabled=true", "--http-host=127.0.0.1",
        f"--http-port={port}", "--hostname-strict=false",
        f"--db-url=jdbc:h2:file:{workdir / 'db'};NON_KEYWORDS=VALUE",
        # One line per request in the log: what the tests count (JWKS fetches).
        "--http-access-log-enabled=true",
    ]  # fmt: skip
    started = time.monotonic()
    with keycloak.log_file.open("ab") as log:
        keycloak.proc = subprocess.Popen(args, stdout=log, stderr=log, env=env, cwd=workdir)
    try:
        deadline = started + timeout
        while not _ready(keycloak.base):
            if keycloak.proc.poll() is not None:
                raise RuntimeError(f"Keycloak exited: {keycloak.logs()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"Keycloak not ready after {timeout}s: {keycloak.logs()[-3000:]}"
                )
            time.sleep(0.1)
        keycloak.start_seconds = time.monotonic() - started
        yield keycloak
    finally:
        keycloak.close()
        terminate(keycloak.proc, grace=20)
