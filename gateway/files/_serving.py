"""How a file (or an export archive) is served: safe response headers and HTTP byte
ranges. No I/O here.

Only inert raster images (PNG, JPEG, GIF, WebP, when the bytes show the type
declared) are shown inline; everything else is an attachment, and markup a
browser would run (HTML, SVG, XML, scripts) is sent as
``application/octet-stream``. Every answer says ``nosniff`` and carries a
Content-Security-Policy that allows nothing and sandboxes the document, so a
file can never run as a page of the gateway's origin.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
CONTENT_SECURITY_POLICY = "default-src 'none'; sandbox"
_ACTIVE = re.compile(r"html|xml|svg|script|xsl", re.IGNORECASE)
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]")

#: (start, end inclusive, suffix) as the worker's download takes it.
ByteRange = tuple[int | None, int | None, int | None]


def parse_range(header: str | None) -> ByteRange | None:
    """One byte range of a Range header; None (the whole file) for none, several or a bad one."""
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if m is None:
        return None
    first, last = m.group(1), m.group(2)
    if not first and not last:
        return None
    if not first:
        return None, None, int(last)
    start, end = int(first), int(last) if last else None
    if end is not None and end < start:
        return None
    return start, end, None


def served_type(file: dict[str, Any]) -> tuple[str, bool]:
    """(Content-Type, inline?) for a file's metadata."""
    sniffed, declared = file["content_type"], file["declared_type"]
    if sniffed in INLINE_TYPES and sniffed == declared:
        return sniffed, True
    for candidate in (sniffed, declared):
        if _ACTIVE.search(candidate):
            return "application/octet-stream", False
    return declared, False


def _disposition(name: str, inline: bool) -> str:
    plain = _SAFE_NAME.sub("_", name)[:200] or "file"
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"


def file_headers(file: dict[str, Any]) -> dict[str, str]:
    """The headers every answer with a file's bytes carries."""
    content_type, inline = served_type(file)
    return {
        "content-type": content_type,
        "content-disposition": _disposition(file["name"], inline),
        "x-content-type-options": "nosniff",
        "content-security-policy": CONTENT_SECURITY_POLICY,
        "cross-origin-resource-policy": "same-site",
        "cache-control": "private, no-store",
        "accept-ranges": "bytes",
        "etag": f'"{file["sha256"]}-{file["version"]}"',
        "referrer-policy": "no-referrer",
    }


def archive_headers(filename: str) -> dict[str, str]:
    """The headers of a user's export archive (a tar stream, its length unknown ahead)."""
    return {
        "content-type": "application/x-tar",
        "content-disposition": _disposition(filename, inline=False),
        "x-content-type-options": "nosniff",
        "content-security-policy": CONTENT_SECURITY_POLICY,
        "cross-origin-resource-policy": "same-site",
        "cache-control": "private, no-store",
        "referrer-policy": "no-referrer",
    }


def refusal_headers() -> dict[str, str]:
    """What an answer without a file carries (a refusal)."""
    return {
        "x-content-type-options": "nosniff",
        "content-security-policy": CONTENT_SECURITY_POLICY,
        "cache-control": "no-store",
    }
