"""The Tenant spec: one model and one parser, read the same way by every component.

The gateway (its tenants file and the Tenant resources it watches), the worker
(its policy file) and the operator (what the CRD's schema cannot check) all
call :func:`parse_tenant_spec`, so a spec one component accepts no other
refuses. The API server's OpenAPI schema and CEL rules stay its own first
check; this is the components' single reading of the same document. A new
field is added here (and in the CRD), nowhere else.

No I/O here. :class:`SpecError` names the offending field by its path.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, TypeVar

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from stowage import apps
from stowage._schema_check import plainly_valid
from stowage.apps import Component, ConfigMapKeyRef, Domains

#: The schemaless collection every tenant has.
BUILTIN_COLLECTION = "items"
#: What a collection name may look like (a PostgreSQL-friendly identifier).
COLLECTION_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

_QUANTITY = re.compile(r"^([0-9]+)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_UNITS = {
    None: 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


_T = TypeVar("_T")

#: How many distinct values :func:`_shared` (and :func:`_collections`) keep.
_SHARED_MAX = 4096
_shared_values: dict[object, Any] = {}


def _shared(value: _T) -> _T:
    """One object for equal (immutable, hashable) values parsed for many tenants.

    A gateway holding ten thousand tenants that share their rate limits and
    launch stage keeps one object of each instead of ten thousand: less memory,
    and fewer objects for the garbage collector to walk. Bounded: past
    ``_SHARED_MAX`` distinct values, new ones are simply not shared.
    """
    found = _shared_values.get(value)
    if found is not None:
        return found  # type: ignore[no-any-return]
    if len(_shared_values) < _SHARED_MAX:
        _shared_values[value] = value
    return value


class SpecError(ValueError):
    """The spec is not valid; the message starts with the field's path."""


@dataclass(frozen=True)
class Rate:
    """A token bucket: ``burst`` tokens, refilled at ``per_minute`` per minute."""

    per_minute: int
    burst: int

    @property
    def per_second(self) -> float:
        return self.per_minute / 60.0


@dataclass(frozen=True)
class RateLimits:
    per_user: Rate = Rate(per_minute=120, burst=30)
    per_tenant: Rate = Rate(per_minute=6000, burst=600)


@dataclass(frozen=True)
class SecretRef:
    """A key of a Secret: the gateway reads it from ``<secrets dir>/<name>/<key>``."""

    name: str
    key: str


@dataclass(frozen=True)
class Introspection:
    """RFC 7662 token introspection, for an issuer whose access tokens are opaque."""

    endpoint: str
    client_id: str
    #: The client secret (HTTP Basic authentication); None: a public client.
    client_secret_ref: SecretRef | None = None
    #: True: JWTs are checked at the endpoint too, not against the issuer's keys.
    all_tokens: bool = False


@dataclass(frozen=True)
class Auth:
    """The tenant's OAuth issuer and the audience (its MCP URL) its tokens must carry."""

    issuer: str
    audience: str
    jwks_uri: str | None = None
    #: Set: tokens that are not JWTs are checked at this introspection endpoint.
    introspection: Introspection | None = None
    #: True: a token without ``auth_time`` is refused, so no revocation can be undone
    #: by a refresh; False: such a token's revocations compare its ``iat``.
    require_auth_time: bool = False


class Stage(StrEnum):
    """Who may use the tenant's app: its internal testers only, or everyone."""

    INTERNAL = "Internal"
    GENERAL_AVAILABILITY = "GeneralAvailability"


@dataclass(frozen=True)
class Access:
    """The launch stage: at ``Internal``, only the allow-listed subjects and email domains."""

    stage: Stage = Stage.GENERAL_AVAILABILITY
    allow_subjects: frozenset[str] = frozenset()
    #: Lower-case domains; a token's verified ``email`` must end in ``@<domain>``.
    allow_email_domains: frozenset[str] = frozenset()

    @property
    def open(self) -> bool:
        """True when everyone with a valid token may use the app."""
        return self.stage is Stage.GENERAL_AVAILABILITY


@dataclass(frozen=True)
class Quotas:
    """Storage limits: the tenant's totals, each user's totals, each object's encoded size.

    The per-user limits are None when the spec sets none: then one user may
    use the tenant's whole quota.
    """

    max_objects: int = 1_000_000
    max_bytes: int = 10 * 2**30
    max_object_bytes: int = 256 * 2**10
    per_user_max_objects: int | None = None
    per_user_max_bytes: int | None = None


@dataclass(frozen=True)
class Retention:
    #: Days objects are kept after their last write; None keeps them.
    default_days: int | None = None
    #: Per-collection days, overriding ``default_days``.
    collections: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Upgrade:
    """Turns data at ``from_version`` into data at ``from_version + 1``."""

    from_version: int
    rename: Mapping[str, str] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    set: Mapping[str, Any] = field(default_factory=dict)
    remove: tuple[str, ...] = ()


@dataclass(frozen=True)
class Collection:
    """A collection the tenant declares; ``schema`` (a JSON Schema) drives its typed tools."""

    name: str
    schema_version: int = 1
    schema: Mapping[str, Any] | None = None
    upgrades: tuple[Upgrade, ...] = ()
    #: True: its objects live in spaces that several users share (``space`` argument).
    shared: bool = False


#: What a claim name may look like (a JWT claim: letters, digits, ``_ - . : /``).
_CLAIM = re.compile(r"^[A-Za-z0-9_.:/-]{1,256}$")


@dataclass(frozen=True)
class Identity:
    """Which token claims say who the user is (``spec.identity``)."""

    #: The claim whose value is the tenant's user id (``sub``, or e.g. ``account_id``).
    user_claim: str = "sub"
    #: A display name other members of a space may see; None: a stable pseudonym instead.
    name_claim: str | None = None
    #: A verified email (ignored when ``email_verified`` is false), for invitations by email.
    email_claim: str | None = None
    #: The organisation the user belongs to, for organisation spaces.
    org_claim: str | None = None
    #: Invitations to an email wait until someone with that verified email signs in.
    invite_by_email: bool = False
    #: Every value of the org claim has one space its users join without an invitation.
    org_spaces: bool = False


class SpaceErasure(StrEnum):
    """What an erasure does to what the erased user wrote in shared spaces."""

    DELETE = "delete"
    PSEUDONYMISE = "pseudonymise"


@dataclass(frozen=True)
class Spaces:
    """Shared spaces (``spec.spaces``)."""

    erasure: SpaceErasure = SpaceErasure.PSEUDONYMISE


#: What a media type in ``files.allowedContentTypes`` may look like (``image/png``, ``image/*``).
_MEDIA_TYPE = re.compile(
    r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/([a-z0-9][a-z0-9!#$&^_.+-]{0,126}|\*)$"
)


@dataclass(frozen=True)
class Files:
    """Files (``spec.files``): bytes stored beside the objects, moved through signed URLs.

    Unset (None on :class:`TenantSpec`): the tenant offers no files tools.
    """

    #: The largest single file, in bytes.
    max_file_bytes: int = 25 * 2**20
    #: Media types a file may have (declared and sniffed), ``type/*`` for a family;
    #: empty: any type.
    allowed_content_types: tuple[str, ...] = ()

    def allows(self, content_type: str) -> bool:
        """Whether ``content_type`` (without parameters, lower case) is allowed."""
        if not self.allowed_content_types:
            return True
        family = content_type.split("/", 1)[0] + "/*"
        return content_type in self.allowed_content_types or family in self.allowed_content_types


@dataclass(frozen=True)
class WorkerSettings:
    """The tenant's worker Deployment (read by the operator)."""

    replicas: int = 2
    #: None: the operator's own worker image.
    image: str | None = None
    #: Kubernetes ``requests`` and ``limits``; empty: the operator's defaults.
    requests: Mapping[str, str] = field(default_factory=dict)
    limits: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BackupKeep:
    """How many backups to keep, or for how many days (either or both)."""

    count: int | None = None
    days: int | None = None


@dataclass(frozen=True)
class BackupSettings:
    """The tenant's backups and drills (read by the operator); None: the Region's."""

    enabled: bool = True
    schedule: str | None = None
    drill_schedule: str | None = None
    #: Replaces the Region's keep as a whole when set.
    keep: BackupKeep | None = None


@dataclass(frozen=True)
class TenantSpec:
    """The parts of a Tenant's spec the components read. ``auth`` is None when absent.

    Every component holds this value as the parser gives it (the gateway, the
    worker from its policy file, the operator), never copies of some fields, so
    a field added here and in the CRD reaches them all.
    """

    auth: Auth | None = None
    rate_limits: RateLimits = RateLimits()
    quotas: Quotas = Quotas()
    retention: Retention = Retention()
    collections: tuple[Collection, ...] = ()
    access: Access = Access()
    worker: WorkerSettings = WorkerSettings()
    backup: BackupSettings = BackupSettings()
    #: Views (MCP Apps) the tenant ships with its tools (:mod:`stowage.apps`).
    components: tuple[Component, ...] = ()
    identity: Identity = Identity()
    spaces: Spaces = Spaces()
    #: None: the tenant stores no files (no files tools).
    files: Files | None = None


def parse_quantity(value: object, where: str) -> int:
    """A Kubernetes-style byte quantity (``256Ki``, ``10Gi``) or a non-negative integer."""
    if isinstance(value, bool):
        raise SpecError(f"{where}: expected a quantity, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise SpecError(f"{where}: must not be negative")
        return value
    m = _QUANTITY.match(str(value).strip())
    if not m:
        raise SpecError(f"{where}: {value!r} is not a quantity like 256Ki or 10Gi")
    return int(m.group(1)) * _UNITS[m.group(2)]


def _mapping(raw: object, where: str) -> Mapping[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise SpecError(f"{where}: expected a mapping")
    return raw


def _positive(value: object, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SpecError(f"{where}: must be a positive integer")
    return value


def _rate(raw: object, where: str, default: Rate) -> Rate:
    if raw is None:
        return default
    r = _mapping(raw, where)
    return _shared(
        Rate(
            per_minute=_positive(
                r.get("requestsPerMinute", default.per_minute), f"{where}.requestsPerMinute"
            ),
            burst=_positive(r.get("burst", default.burst), f"{where}.burst"),
        )
    )


_SECRET_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_EMAIL_DOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$")
_LOCAL_HTTP = ("http://localhost", "http://127.0.0.1")


def _string(raw: object, where: str, *, max_length: int = 2048) -> str:
    if not isinstance(raw, str) or not raw:
        raise SpecError(f"{where}: required")
    if len(raw) > max_length:
        raise SpecError(f"{where}: at most {max_length} characters")
    return raw


def _introspection(raw: object, where: str) -> Introspection | None:
    if raw is None:
        return None
    i = _mapping(raw, where)
    endpoint = _string(i.get("endpoint"), f"{where}.endpoint")
    if not endpoint.startswith("https://") and not endpoint.startswith(_LOCAL_HTTP):
        raise SpecError(f"{where}.endpoint: must be an https:// URL (http:// only for localhost)")
    client_id = _string(i.get("clientId"), f"{where}.clientId", max_length=512)
    ref: SecretRef | None = None
    if (raw_ref := i.get("clientSecretRef")) is not None:
        r = _mapping(raw_ref, f"{where}.clientSecretRef")
        name = _string(r.get("name"), f"{where}.clientSecretRef.name", max_length=253)
        key = _string(r.get("key"), f"{where}.clientSecretRef.key", max_length=253)
        if not _SECRET_NAME.match(name):
            raise SpecError(f"{where}.clientSecretRef.name: not a Secret name")
        if not _SECRET_KEY.match(key):
            raise SpecError(f"{where}.clientSecretRef.key: not a Secret key")
        ref = SecretRef(name, key)
    all_tokens = i.get("allTokens", False)
    if not isinstance(all_tokens, bool):
        raise SpecError(f"{where}.allTokens: expected true or false")
    return _shared(
        Introspection(
            endpoint=endpoint, client_id=client_id, client_secret_ref=ref, all_tokens=all_tokens
        )
    )


def _auth(raw: object, where: str) -> Auth | None:
    if raw is None:
        return None
    a = _mapping(raw, where)
    issuer, audience, jwks_uri = a.get("issuer"), a.get("audience"), a.get("jwksUri")
    if not isinstance(issuer, str) or not issuer:
        raise SpecError(f"{where}.issuer: required")
    if not isinstance(audience, str) or not audience:
        raise SpecError(f"{where}.audience: required")
    if jwks_uri is not None and not isinstance(jwks_uri, str):
        raise SpecError(f"{where}.jwksUri: expected a URL")
    require_auth_time = a.get("requireAuthTime", False)
    if not isinstance(require_auth_time, bool):
        raise SpecError(f"{where}.requireAuthTime: expected true or false")
    return Auth(
        issuer=_shared(issuer),
        audience=audience,
        jwks_uri=_shared(jwks_uri) if jwks_uri else None,
        introspection=_introspection(a.get("introspection"), f"{where}.introspection"),
        require_auth_time=require_auth_time,
    )


def _strings(raw: object, where: str, *, max_items: int, max_length: int) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list | tuple):
        raise SpecError(f"{where}: expected a list")
    if len(raw) > max_items:
        raise SpecError(f"{where}: at most {max_items} entries")
    return [_string(v, f"{where}[{i}]", max_length=max_length) for i, v in enumerate(raw)]


def _access(raw: object, where: str) -> Access:
    a = _mapping(raw, where)
    stage_name = a.get("stage", Stage.GENERAL_AVAILABILITY.value)
    try:
        stage = Stage(stage_name)
    except ValueError as e:
        choices = " or ".join(s.value for s in Stage)
        raise SpecError(f"{where}.stage: must be {choices}, not {stage_name!r}") from e
    subjects = _strings(
        a.get("allowSubjects"), f"{where}.allowSubjects", max_items=1000, max_length=1024
    )
    domains = _strings(
        a.get("allowEmailDomains"), f"{where}.allowEmailDomains", max_items=100, max_length=253
    )
    for i, domain in enumerate(domains):
        if not _EMAIL_DOMAIN.match(domain):
            raise SpecError(
                f"{where}.allowEmailDomains[{i}]: {domain!r} is not a lower-case domain name"
            )
    if stage is Stage.INTERNAL and not subjects and not domains:
        raise SpecError(
            f"{where}.stage: Internal needs allowSubjects or allowEmailDomains (who may test)"
        )
    return _shared(Access(stage, frozenset(subjects), frozenset(domains)))


def _quotas(raw: object, where: str) -> Quotas:
    q = _mapping(raw, where)
    d = Quotas()
    per_user = _mapping(q.get("perUser"), f"{where}.perUser")
    user_objects, user_bytes = per_user.get("maxObjects"), per_user.get("maxBytes")
    quotas = Quotas(
        max_objects=parse_quantity(q.get("maxObjects", d.max_objects), f"{where}.maxObjects"),
        max_bytes=parse_quantity(q.get("maxBytes", d.max_bytes), f"{where}.maxBytes"),
        max_object_bytes=parse_quantity(
            q.get("maxObjectBytes", d.max_object_bytes), f"{where}.maxObjectBytes"
        ),
        per_user_max_objects=(
            None
            if user_objects is None
            else parse_quantity(user_objects, f"{where}.perUser.maxObjects")
        ),
        per_user_max_bytes=(
            None if user_bytes is None else parse_quantity(user_bytes, f"{where}.perUser.maxBytes")
        ),
    )
    if (quotas.per_user_max_objects or 0) > quotas.max_objects:
        raise SpecError(f"{where}.perUser.maxObjects: must not exceed maxObjects")
    if (quotas.per_user_max_bytes or 0) > quotas.max_bytes:
        raise SpecError(f"{where}.perUser.maxBytes: must not exceed maxBytes")
    return _shared(quotas)


def _retention(raw: object, where: str) -> Retention:
    r = _mapping(raw, where)
    default_days = r.get("defaultDays")
    if default_days is not None:
        _positive(default_days, f"{where}.defaultDays")
    per: dict[str, int] = {}
    for name, days in _mapping(r.get("collections"), f"{where}.collections").items():
        if not COLLECTION_NAME.match(str(name)):
            raise SpecError(f"{where}.collections.{name}: not a valid collection name")
        per[str(name)] = _positive(days, f"{where}.collections.{name}")
    return Retention(default_days, per)


def _json_path(path: Any) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


@functools.lru_cache(maxsize=4096)
def _schema_problem(schema_json: str) -> tuple[str, str] | None:
    """(path, message) of the first problem of a JSON Schema, or None; cached by its text.

    Checking a schema costs about a millisecond; a gateway reading ten thousand
    tenants that share a few schemas checks each distinct one once, and one that
    :func:`~stowage._schema_check.plainly_valid` accepts not at all.
    """
    try:
        Draft202012Validator.check_schema(json.loads(schema_json))
    except SchemaError as e:
        return _json_path(e.path), e.message
    return None


def _collection(raw: object, where: str) -> Collection:
    c = _mapping(raw, where)
    name = c.get("name")
    if not isinstance(name, str) or not COLLECTION_NAME.match(name):
        raise SpecError(f"{where}.name: must match [a-z][a-z0-9_]{{0,62}}")
    version = _positive(c.get("schemaVersion", 1), f"{where}.schemaVersion")
    schema = c.get("schema")
    if schema is not None:
        if not isinstance(schema, Mapping):
            raise SpecError(f"{where}.schema: expected a JSON Schema object")
        # Most schemas are plainly valid at a glance; the others go to the meta-schema.
        problem = (
            None
            if plainly_valid(schema)
            else _schema_problem(json.dumps(schema, sort_keys=True, default=str))
        )
        if problem is not None:
            path, message = problem
            raise SpecError(f"{where}.schema{path}: not a valid JSON Schema: {message}")
    upgrades: list[Upgrade] = []
    seen: set[int] = set()
    for j, u in enumerate(c.get("upgrades") or ()):
        here = f"{where}.upgrades[{j}]"
        step = _mapping(u, here)
        frm = step.get("fromVersion")
        if not isinstance(frm, int) or isinstance(frm, bool) or not 1 <= frm < version:
            raise SpecError(f"{here}.fromVersion: must be between 1 and {version - 1}")
        if frm in seen:
            raise SpecError(f"{here}.fromVersion: {frm} appears twice")
        seen.add(frm)
        upgrades.append(
            Upgrade(
                from_version=frm,
                rename=dict(_mapping(step.get("rename"), f"{here}.rename")),
                defaults=dict(_mapping(step.get("defaults"), f"{here}.defaults")),
                set=dict(_mapping(step.get("set"), f"{here}.set")),
                remove=tuple(step.get("remove") or ()),
            )
        )
    shared = c.get("shared", False)
    if not isinstance(shared, bool):
        raise SpecError(f"{where}.shared: expected true or false")
    return Collection(
        name, version, dict(schema) if schema is not None else None, tuple(upgrades), shared
    )


_shared_collections: dict[str, tuple[Collection, ...]] = {}


def _collections(raw: object, where: str) -> tuple[Collection, ...]:
    """The declared collections; a list already parsed for another tenant is not parsed again."""
    raw = raw or ()
    if not isinstance(raw, list | tuple):
        raise SpecError(f"{where}: expected a list")
    if not raw:
        return ()
    try:
        key = json.dumps(raw, sort_keys=True, default=repr)
    except (TypeError, ValueError):
        key = None  # keys that do not sort: parse it, do not share it
    if key is not None and (found := _shared_collections.get(key)) is not None:
        return found
    collections: list[Collection] = []
    names: set[str] = set()
    for i, c in enumerate(raw):
        collection = _collection(c, f"{where}[{i}]")
        if collection.name in names:
            raise SpecError(f"{where}[{i}].name: {collection.name!r} appears twice")
        names.add(collection.name)
        collections.append(collection)
    parsed = tuple(collections)
    if key is not None and len(_shared_collections) < _SHARED_MAX:
        _shared_collections[key] = parsed
    return parsed


def _count(value: object, where: str, *, minimum: int = 0) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise SpecError(f"{where}: must be an integer of at least {minimum}")
    return value


def _resources(raw: object, where: str) -> Mapping[str, str]:
    return {str(k): str(v) for k, v in _mapping(raw, where).items()}


def _worker(raw: object, where: str) -> WorkerSettings:
    w = _mapping(raw, where)
    resources = _mapping(w.get("resources"), f"{where}.resources")
    replicas = _count(w.get("replicas"), f"{where}.replicas")
    image = w.get("image")
    return WorkerSettings(
        replicas=2 if replicas is None else replicas,
        image=None if not image else _string(image, f"{where}.image"),
        requests=_resources(resources.get("requests"), f"{where}.resources.requests"),
        limits=_resources(resources.get("limits"), f"{where}.resources.limits"),
    )


def _claim(raw: object, where: str) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or not _CLAIM.match(raw):
        raise SpecError(f"{where}: a claim name (1-256 of A-Z a-z 0-9 _ . : / -)")
    return raw


def _flag(raw: object, where: str) -> bool:
    if raw is None:
        return False
    if not isinstance(raw, bool):
        raise SpecError(f"{where}: expected true or false")
    return raw


def _identity(raw: object, where: str) -> Identity:
    i = _mapping(raw, where)
    identity = Identity(
        user_claim=_claim(i.get("userClaim"), f"{where}.userClaim") or "sub",
        name_claim=_claim(i.get("nameClaim"), f"{where}.nameClaim"),
        email_claim=_claim(i.get("emailClaim"), f"{where}.emailClaim"),
        org_claim=_claim(i.get("orgClaim"), f"{where}.orgClaim"),
        invite_by_email=_flag(i.get("inviteByEmail"), f"{where}.inviteByEmail"),
        org_spaces=_flag(i.get("orgSpaces"), f"{where}.orgSpaces"),
    )
    if identity.invite_by_email and identity.email_claim is None:
        raise SpecError(f"{where}.inviteByEmail: needs emailClaim (where the verified email is)")
    if identity.org_spaces and identity.org_claim is None:
        raise SpecError(f"{where}.orgSpaces: needs orgClaim (which claim names the organisation)")
    return _shared(identity)


def _spaces(raw: object, where: str) -> Spaces:
    s = _mapping(raw, where)
    erasure = s.get("erasure", SpaceErasure.PSEUDONYMISE.value)
    try:
        return _shared(Spaces(erasure=SpaceErasure(erasure)))
    except ValueError as e:
        choices = " or ".join(e.value for e in SpaceErasure)
        raise SpecError(f"{where}.erasure: must be {choices}, not {erasure!r}") from e


def _files(raw: object, where: str) -> Files | None:
    if raw is None:
        return None
    f = _mapping(raw, where)
    unknown = sorted(set(f) - {"maxFileBytes", "allowedContentTypes"})
    if unknown:
        raise SpecError(f"{where}.{unknown[0]}: not maxFileBytes or allowedContentTypes")
    default = Files()
    size = f.get("maxFileBytes")
    max_bytes = (
        default.max_file_bytes if size is None else parse_quantity(size, f"{where}.maxFileBytes")
    )
    if not 1 <= max_bytes <= 5 * 2**30:
        raise SpecError(f"{where}.maxFileBytes: must be between 1 and 5Gi")
    types = _strings(
        f.get("allowedContentTypes"), f"{where}.allowedContentTypes", max_items=64, max_length=255
    )
    for i, value in enumerate(types):
        if not _MEDIA_TYPE.match(value):
            raise SpecError(
                f"{where}.allowedContentTypes[{i}]: {value!r} is not a lower-case media type "
                "like image/png or image/*"
            )
    return _shared(Files(max_file_bytes=max_bytes, allowed_content_types=tuple(types)))


def _optional_string(raw: object, where: str) -> str | None:
    return None if not raw else _string(raw, where)


def _backup(raw: object, where: str) -> BackupSettings:
    b = _mapping(raw, where)
    enabled = b.get("enabled", True)
    if not isinstance(enabled, bool):
        raise SpecError(f"{where}.enabled: expected true or false")
    keep: BackupKeep | None = None
    if b.get("keep"):
        k = _mapping(b.get("keep"), f"{where}.keep")
        keep = BackupKeep(
            count=_count(k.get("count"), f"{where}.keep.count", minimum=1),
            days=_count(k.get("days"), f"{where}.keep.days", minimum=1),
        )
    return BackupSettings(
        enabled=enabled,
        schedule=_optional_string(b.get("schedule"), f"{where}.schedule"),
        drill_schedule=_optional_string(b.get("drillSchedule"), f"{where}.drillSchedule"),
        keep=keep,
    )


def _domains(raw: object, where: str) -> Domains:
    d = _mapping(raw, where)
    found: dict[str, tuple[str, ...]] = {}
    for purpose in ("connect", "resource", "frame"):
        values = _strings(
            d.get(purpose), f"{where}.{purpose}", max_items=apps.MAX_DOMAINS, max_length=253
        )
        for i, value in enumerate(values):
            if (problem := apps.domain_problem(value)) is not None:
                raise SpecError(f"{where}.{purpose}[{i}]: {problem}")
        found[purpose] = tuple(values)
    unknown = sorted(set(d) - set(found))
    if unknown:
        raise SpecError(f"{where}.{unknown[0]}: not connect, resource or frame")
    return Domains(**found)


def _linked_tools(raw: object, where: str, linkable: frozenset[str]) -> tuple[str, ...]:
    names = _strings(raw, where, max_items=64, max_length=128)
    for i, name in enumerate(names):
        if name not in linkable:
            raise SpecError(
                f"{where}[{i}]: {name!r} is not a tool of this tenant a component can open "
                "(<collection>_save, _get, _list or _delete, for items or a declared collection)"
            )
        if name in names[:i]:
            raise SpecError(f"{where}[{i}]: {name!r} appears twice")
    return tuple(names)


def _html_from(raw: object, where: str) -> ConfigMapKeyRef:
    """``htmlFrom: {configMapKeyRef: {name, key}}``, a key of a ConfigMap in the Tenant's
    namespace: no namespace may be named."""
    f = _mapping(raw, where)
    unknown = sorted(set(f) - {"configMapKeyRef"})
    if unknown:
        raise SpecError(f"{where}.{unknown[0]}: not configMapKeyRef")
    here = f"{where}.configMapKeyRef"
    ref = _mapping(f.get("configMapKeyRef"), here)
    unknown = sorted(set(ref) - {"name", "key"})
    if unknown:
        raise SpecError(
            f"{here}.{unknown[0]}: only name and key (the ConfigMap is in the Tenant's namespace)"
        )
    name = _string(ref.get("name"), f"{here}.name", max_length=253)
    key = _string(ref.get("key"), f"{here}.key", max_length=253)
    if not _SECRET_NAME.match(name):
        raise SpecError(f"{here}.name: {name!r} is not a ConfigMap name")
    if not _SECRET_KEY.match(key):
        raise SpecError(f"{here}.key: {key!r} is not a ConfigMap key")
    return ConfigMapKeyRef(name, key)


def _check_html(html: str, domains: Domains, where: str, limit: int) -> None:
    """What any component's HTML is held to, inline or from a ConfigMap; ``where`` names it."""
    if not html.strip():
        raise SpecError(f"{where}: empty (the component's HTML document)")
    size = len(html.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise SpecError(
            f"{where}: {size} bytes, over the limit of {limit} "
            "(bundle it smaller: minify, drop unused code)"
        )
    undeclared = apps.undeclared_sources(html, domains)
    if undeclared:
        raise SpecError(
            f"{where}: loads {undeclared[0]!r} from an origin domains.resource "
            "(or domains.frame) does not declare; inline it or declare its https:// origin"
        )


def _component(raw: object, where: str, linkable: frozenset[str]) -> Component:
    c = _mapping(raw, where)
    name = c.get("name")
    if not isinstance(name, str) or not apps.NAME.match(name):
        raise SpecError(f"{where}.name: must match [a-z][a-z0-9-]{{0,62}}")
    html, html_from = c.get("html"), c.get("htmlFrom")
    if html is not None and html_from is not None:
        raise SpecError(
            f"{where}.htmlFrom: set html (inline) or htmlFrom (a ConfigMap key), not both"
        )
    border = c.get("prefersBorder")
    if border is not None and not isinstance(border, bool):
        raise SpecError(f"{where}.prefersBorder: expected true or false")
    domains = _domains(c.get("domains"), f"{where}.domains")
    ref: ConfigMapKeyRef | None = None
    if html_from is not None:
        ref, html = _html_from(html_from, f"{where}.htmlFrom"), ""
    elif not isinstance(html, str) or not html.strip():
        raise SpecError(
            f"{where}.html: required (the component's HTML document), or htmlFrom (a ConfigMap key)"
        )
    else:
        _check_html(html, domains, f"{where}.html", apps.MAX_HTML_BYTES)
    return Component(
        name=name,
        html=html,
        title=_optional_text(c.get("title"), f"{where}.title", 200),
        description=_optional_text(c.get("description"), f"{where}.description", 1024),
        tools=_linked_tools(c.get("tools"), f"{where}.tools", linkable),
        app_only=_linked_tools(c.get("appOnly"), f"{where}.appOnly", linkable),
        domains=domains,
        prefers_border=border,
        html_from=ref,
    )


class ComponentNotFound(SpecError):
    """A component's ``htmlFrom`` names a ConfigMap, or a key, that is not there."""


def resolve_components(
    spec: TenantSpec, read: Callable[[ConfigMapKeyRef], str], where: str = "spec"
) -> tuple[TenantSpec, tuple[SpecError, ...]]:
    """``spec`` with each ``htmlFrom`` component's HTML read through ``read``, checked like inline
    HTML (at most :data:`stowage.apps.MAX_BUNDLE_BYTES`), and the problems found.

    ``read`` returns the text of the key, or raises LookupError saying what is
    missing (the ConfigMap, its key, its label). A component that cannot be
    read or is refused stays unresolved (not served) and its problem, naming
    ``<where>.components[i].htmlFrom``, is returned (a :class:`ComponentNotFound`
    for a missing one); the other components are unaffected. No I/O here: the
    caller's ``read`` is what looks the ConfigMap up.
    """
    if not any(c.html_from is not None for c in spec.components):
        return spec, ()
    components: list[Component] = []
    problems: list[SpecError] = []
    for i, component in enumerate(spec.components):
        if component.html_from is None:
            components.append(component)
            continue
        here = f"{where}.components[{i}].htmlFrom"
        try:
            html = read(component.html_from)
            _check_html(html, component.domains, here, apps.MAX_BUNDLE_BYTES)
        except LookupError as e:
            problems.append(ComponentNotFound(f"{here}: {e.args[0] if e.args else e}"))
            html = ""
        except SpecError as e:
            problems.append(e)
            html = ""
        components.append(replace(component, html=html))
    return replace(spec, components=tuple(components)), tuple(problems)


def linkable_tools(collections: tuple[Collection, ...]) -> frozenset[str]:
    """The tools a component may be linked to: the object tools of items and each collection."""
    names = {BUILTIN_COLLECTION} | {c.name for c in collections if c.schema is not None}
    return frozenset(f"{name}_{verb}" for name in names for verb in apps.LINKABLE_VERBS)


def _optional_text(raw: object, where: str, max_length: int) -> str | None:
    return None if raw is None else _string(raw, where, max_length=max_length)


def _components(
    raw: object, where: str, collections: tuple[Collection, ...]
) -> tuple[Component, ...]:
    raw = raw or ()
    if not isinstance(raw, list | tuple):
        raise SpecError(f"{where}: expected a list")
    if not raw:
        return ()
    if len(raw) > apps.MAX_COMPONENTS:
        raise SpecError(f"{where}: at most {apps.MAX_COMPONENTS} components")
    linkable = linkable_tools(collections)
    components: list[Component] = []
    opened_by: dict[str, str] = {}
    total = 0
    for i, c in enumerate(raw):
        component = _component(c, f"{where}[{i}]", linkable)
        if any(known.name == component.name for known in components):
            raise SpecError(f"{where}[{i}].name: {component.name!r} appears twice")
        for j, tool in enumerate(component.tools):
            if tool in opened_by:
                raise SpecError(
                    f"{where}[{i}].tools[{j}]: {tool!r} already opens component {opened_by[tool]!r}"
                )
            opened_by[tool] = component.name
        total += len(component.html.encode("utf-8", "surrogatepass"))  # inline only
        if total > apps.MAX_TOTAL_HTML_BYTES:
            raise SpecError(
                f"{where}[{i}].html: the components' HTML comes to {total} bytes, over the "
                f"limit of {apps.MAX_TOTAL_HTML_BYTES} for all of a tenant's components"
            )
        components.append(component)
    return tuple(components)


def parse_tenant_spec(raw: Mapping[str, Any] | None, where: str = "spec") -> TenantSpec:
    """The spec's parts the components read; SpecError names the field, after ``where.``."""
    p = f"{where}." if where else ""
    spec = _mapping(raw, where or "spec")
    limits = _mapping(spec.get("rateLimits"), f"{p}rateLimits")
    defaults = RateLimits()
    collections = _collections(spec.get("collections"), f"{p}collections")
    return TenantSpec(
        auth=_auth(spec.get("auth"), f"{p}auth"),
        rate_limits=RateLimits(
            per_user=_rate(limits.get("perUser"), f"{p}rateLimits.perUser", defaults.per_user),
            per_tenant=_rate(
                limits.get("perTenant"), f"{p}rateLimits.perTenant", defaults.per_tenant
            ),
        ),
        quotas=_quotas(spec.get("quotas"), f"{p}quotas"),
        retention=_retention(spec.get("retention"), f"{p}retention"),
        collections=collections,
        access=_access(spec.get("access"), f"{p}access"),
        worker=_worker(spec.get("worker"), f"{p}worker"),
        backup=_backup(spec.get("backup"), f"{p}backup"),
        components=_components(spec.get("components"), f"{p}components", collections),
        identity=_identity(spec.get("identity"), f"{p}identity"),
        spaces=_spaces(spec.get("spaces"), f"{p}spaces"),
        files=_files(spec.get("files"), f"{p}files"),
    )


__all__ = [
    "BUILTIN_COLLECTION",
    "COLLECTION_NAME",
    "Access",
    "Auth",
    "BackupKeep",
    "BackupSettings",
    "Collection",
    "Component",
    "ComponentNotFound",
    "ConfigMapKeyRef",
    "Domains",
    "Files",
    "Identity",
    "Introspection",
    "Quotas",
    "Rate",
    "RateLimits",
    "Retention",
    "SecretRef",
    "SpaceErasure",
    "Spaces",
    "SpecError",
    "Stage",
    "TenantSpec",
    "Upgrade",
    "WorkerSettings",
    "linkable_tools",
    "parse_quantity",
    "parse_tenant_spec",
    "resolve_components",
]
