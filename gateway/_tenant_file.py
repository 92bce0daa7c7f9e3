"""Tenants from a YAML file, in the Tenant resource's spec shape, reloaded on change.

The file holds either ``tenants: [{name, endpoint, auth, rateLimits, ...}]`` or a
mapping ``tenants: {name: {endpoint, auth, ...}}``. A broken edit keeps the last
good set and is logged; the gateway never serves from a half-read file.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
import yaml

from gateway._errors import TenantConfigError
from gateway._types import AuthConfig, CollectionSpec, Rate, Tenant, TenantName

log = logging.getLogger(__name__)


def _rate(raw: Any, where: str, default: Rate) -> Rate:
    if raw is None:
        return default
    if not isinstance(raw, dict):
        raise TenantConfigError(f"{where}: expected a mapping")
    per_minute = raw.get("requestsPerMinute", default.per_minute)
    burst = raw.get("burst", default.burst)
    for key, value in (("requestsPerMinute", per_minute), ("burst", burst)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise TenantConfigError(f"{where}.{key}: must be a positive integer")
    return Rate(per_minute=per_minute, burst=burst)


def parse_tenant(name: str, spec: Mapping[str, Any], endpoint: str | None = None) -> Tenant:
    """One tenant from its spec; TenantConfigError names the offending field."""
    where = f"tenants.{name}"
    endpoint = endpoint or spec.get("endpoint")
    if not isinstance(endpoint, str) or ":" not in endpoint:
        raise TenantConfigError(f"{where}.endpoint: expected host:port")
    auth = spec.get("auth")
    if not isinstance(auth, dict):
        raise TenantConfigError(f"{where}.auth: expected a mapping with issuer and audience")
    issuer, audience = auth.get("issuer"), auth.get("audience")
    if not isinstance(issuer, str) or not issuer:
        raise TenantConfigError(f"{where}.auth.issuer: required")
    if not isinstance(audience, str) or not audience:
        raise TenantConfigError(f"{where}.auth.audience: required")
    jwks_uri = auth.get("jwksUri")
    limits = spec.get("rateLimits") or {}
    defaults = Tenant(TenantName(name), endpoint, AuthConfig(issuer, audience))
    collections: list[CollectionSpec] = []
    for i, c in enumerate(spec.get("collections") or []):
        if not isinstance(c, dict) or not isinstance(c.get("name"), str):
            raise TenantConfigError(f"{where}.collections[{i}].name: required")
        schema = c.get("schema")
        if schema is not None and not isinstance(schema, dict):
            raise TenantConfigError(f"{where}.collections[{i}].schema: expected a JSON Schema")
        collections.append(
            CollectionSpec(
                name=c["name"], schema_version=int(c.get("schemaVersion", 1)), schema=schema
            )
        )
    retention = (spec.get("retention") or {}).get("collections") or {}
    return Tenant(
        name=TenantName(name),
        endpoint=endpoint,
        auth=AuthConfig(issuer=issuer, audience=audience, jwks_uri=jwks_uri or None),
        per_user=_rate(limits.get("perUser"), f"{where}.rateLimits.perUser", defaults.per_user),
        per_tenant=_rate(
            limits.get("perTenant"), f"{where}.rateLimits.perTenant", defaults.per_tenant
        ),
        collections=tuple(collections),
        extra_collections=tuple(sorted(str(k) for k in retention)),
    )


def parse_tenants(raw: Any) -> dict[TenantName, Tenant]:
    """The whole file: ``{tenants: [...]}`` or ``{tenants: {name: spec}}``."""
    if not isinstance(raw, dict):
        raise TenantConfigError("expected a mapping with a 'tenants' key")
    entries = raw.get("tenants") or []
    if isinstance(entries, dict):
        entries = [{"name": name, **(spec or {})} for name, spec in entries.items()]
    if not isinstance(entries, list):
        raise TenantConfigError("tenants: expected a list or a mapping")
    tenants: dict[TenantName, Tenant] = {}
    for i, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name:
            raise TenantConfigError(f"tenants[{i}].name: required")
        if name in tenants:
            raise TenantConfigError(f"tenants[{i}].name: {name!r} appears twice")
        spec = entry.get("spec", entry)
        tenants[TenantName(name)] = parse_tenant(name, spec, entry.get("endpoint"))
    return tenants


#: libyaml's loader when PyYAML was built with it (about 3x faster than the pure-Python one).
_YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_tenants(path: Path) -> dict[TenantName, Tenant]:
    """Read and parse the file. JSON (a subset of YAML) takes the fast path: for ten
    thousand tenants ``json.loads`` takes a fraction of a second where YAML takes many."""
    text = path.read_text()
    if text.lstrip().startswith("{"):
        try:
            return parse_tenants(json.loads(text))
        except json.JSONDecodeError:
            pass  # YAML flow style that is not JSON: read it as YAML below
    try:
        raw = yaml.load(text, Loader=_YAML_LOADER)
    except yaml.YAMLError as e:
        raise TenantConfigError(f"{path}: not valid YAML: {e}") from e
    return parse_tenants(raw or {})


class FileTenantSource:
    """A :class:`~gateway._directory.TenantSource` over one YAML file.

    Polls the file's modification time and size every ``interval`` seconds (cheap,
    and works on every filesystem, including a ConfigMap's symlink swaps).
    """

    def __init__(self, path: Path, interval: float = 1.0) -> None:
        self.path = path
        self.interval = interval

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    async def watch(self, publish: Callable[[Mapping[TenantName, Tenant]], None]) -> None:
        seen: tuple[int, int, int] | None = None
        first = True
        while True:
            stamp = self._stamp()
            if stamp != seen or first:
                seen = stamp
                log.info("tenant file changed; reading it", extra={"path": str(self.path)})
                try:
                    # Parsed in a thread: a large file never stops the event loop
                    # from answering requests (and probes) meanwhile.
                    tenants = (
                        await anyio.to_thread.run_sync(load_tenants, self.path)
                        if stamp is not None
                        else {}
                    )
                except (OSError, TenantConfigError) as e:
                    log.error("tenant file rejected; keeping the last good set: %s", e)
                    if first:
                        publish({})
                else:
                    log.info(
                        "tenant directory loaded: %d tenants",
                        len(tenants),
                        extra={"tenant_count": len(tenants), "path": str(self.path)},
                    )
                    publish(tenants)
                first = False
            await anyio.sleep(self.interval)
