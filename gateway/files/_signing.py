"""A link's grant and its signature. No I/O here.

The signed text names every part of the grant on its own line, so no two
grants share one: what the link is for (``stowage-file-link/v1`` for a file,
``stowage-export-link/v1`` for a user's export archive), tenant, user, file
(``export`` for the archive), method (``get`` or ``put``), expiry (Unix
seconds), and for an upload the exact size and the sha256 (empty when none was
declared). The kind comes from the path (:data:`EXPORT_PATH` where a file id
would be, never one: file ids are hex), so a file link is refused as an export
link and an export link as a file link: their signed texts differ.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

_SIGNED_AS = "stowage-file-link/v1"
_EXPORT_SIGNED_AS = "stowage-export-link/v1"
#: The last segment of an export archive's link, ``/t/<tenant>/files/export``.
EXPORT_PATH = "export"
_USER = re.compile(r"^[0-9a-f]{32}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class Method(StrEnum):
    """What a link allows: download (GET, and HEAD) or upload (PUT)."""

    GET = "get"
    PUT = "put"

    @classmethod
    def of(cls, http_method: str) -> Method | None:
        return {"GET": cls.GET, "HEAD": cls.GET, "PUT": cls.PUT}.get(http_method.upper())


class Kind(StrEnum):
    """What a link leads to: one file, or the user's export archive."""

    FILE = "file"
    EXPORT = "export"

    @classmethod
    def of(cls, path_segment: str) -> Kind:
        return cls.EXPORT if path_segment == EXPORT_PATH else cls.FILE


class LinkRefused(Exception):
    """A link that cannot be used: ``status`` (400, 403) and what to do, for the answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Grant:
    """What a link allows: ``method`` on ``file_id`` of ``user`` of ``tenant`` until ``expires``."""

    tenant: str
    user: str
    file_id: str
    method: Method
    #: Unix seconds.
    expires: int
    #: An upload's exact size and sha256 (lower-case hex, "" when not declared).
    size: int = 0
    sha256: str = ""
    kind: Kind = Kind.FILE

    def signed_text(self) -> bytes:
        label = _EXPORT_SIGNED_AS if self.kind is Kind.EXPORT else _SIGNED_AS
        parts = [label, self.tenant, self.user, self.file_id, self.method.value]
        parts += [str(self.expires), str(self.size), self.sha256]
        return "\n".join(parts).encode()


def signature(key: bytes, grant: Grant) -> str:
    digest = hmac.new(key, grant.signed_text(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def query(key: bytes, grant: Grant) -> dict[str, str]:
    """The link's query parameters (the path names the tenant and the file)."""
    params = {"u": grant.user, "m": grant.method.value, "e": str(grant.expires)}
    if grant.method is Method.PUT:
        params["n"] = str(grant.size)
        if grant.sha256:
            params["h"] = grant.sha256
    params["s"] = signature(key, grant)
    return params


def read_grant(tenant: str, file_id: str, params: Mapping[str, str]) -> tuple[Grant, str]:
    """The grant a link's query states and its signature; LinkRefused (400) when malformed."""
    try:
        method = Method(params.get("m", ""))
        user, sig = params["u"], params["s"]
        expires = int(params["e"])
        size = int(params.get("n", "0"))
    except (KeyError, ValueError) as e:
        raise LinkRefused(
            400, "malformed_link", "This is not a complete file link; ask the app for a new one."
        ) from e
    sha256 = params.get("h", "")
    if not _USER.match(user) or (sha256 and not _SHA256.match(sha256)) or size < 0:
        raise LinkRefused(400, "malformed_link", "This file link is malformed; ask for a new one.")
    return Grant(tenant, user, file_id, method, expires, size, sha256, Kind.of(file_id)), sig


def _signed_by(keys: Sequence[bytes], grant: Grant, sig: str) -> bool:
    try:
        given = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    except (binascii.Error, ValueError):
        given = b""
    matches = [
        hmac.compare_digest(given, base64.urlsafe_b64decode(signature(key, grant) + "="))
        for key in keys
    ]
    return any(matches)


def check(
    keys: Sequence[bytes], grant: Grant, sig: str, used_as: Method | None, now: float
) -> None:
    """Refuse (403) a link signed by none of ``keys`` (forged or altered), one used for
    another method, or an expired one."""
    exporting = grant.kind is Kind.EXPORT
    if not _signed_by(keys, grant, sig):
        raise LinkRefused(
            403,
            "invalid_signature",
            "This link's signature does not match: it was altered, or it is for another "
            + (
                "user, tenant or kind of link (an export link is not a file link). Ask the "
                "app for a new one (my_data_export)."
                if exporting
                else "file or tenant. Ask the app for a new link (files_get or "
                "files_create_upload)."
            ),
        )
    if used_as is not grant.method:
        allowed = "downloading it (GET)" if grant.method is Method.GET else "uploading it (PUT)"
        raise LinkRefused(
            403,
            "wrong_method",
            f"This link is only for {allowed}; ask the app for a link for what you want to do.",
        )
    if now >= grant.expires:
        raise LinkRefused(
            403,
            "link_expired",
            "This link has expired (links last a few minutes). Ask the app for a new one: "
            + (
                "my_data_export gives a new export link."
                if exporting
                else "files_get for a download, files_create_upload for an upload."
            ),
        )
