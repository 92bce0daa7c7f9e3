"""What a file's first bytes show it to be. No I/O here.

Only what matters for serving safely and for ``files.allowedContentTypes``:
the common binary formats by their magic numbers, and markup a browser would
run (HTML, SVG, XML) by its opening tags. Anything else is ``text/plain``
when it reads as UTF-8 text, else ``application/octet-stream``: the two
*generic* answers, which say nothing against the declared type.
"""

from __future__ import annotations

#: How many leading bytes :func:`sniff` looks at.
HEAD_BYTES = 1024
GENERIC = frozenset({"text/plain", "application/octet-stream"})

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
    (b"\x1f\x8b", "application/gzip"),
    (b"ID3", "audio/mpeg"),
    (b"OggS", "audio/ogg"),
    (b"fLaC", "audio/flac"),
    (b"\x1aE\xdf\xa3", "video/webm"),
    (b"BM", "image/bmp"),
)
_HTML_TAGS = (
    b"<!doctype html",
    b"<html",
    b"<head",
    b"<body",
    b"<script",
    b"<iframe",
    b"<style",
    b"<title",
    b"<div",
    b"<a ",
    b"<img",
    b"<table",
    b"<p>",
)


def sniff(head: bytes) -> str:
    """The media type the leading bytes of a file show (see the module's note)."""
    for magic, media_type in _MAGIC:
        if head.startswith(magic):
            return media_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[4:8] == b"ftyp":
        return "video/mp4"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(_HTML_TAGS) or (text.startswith(b"<!--") and b"<html" in text):
        return "text/html"
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "image/svg+xml"
    if text.startswith(b"<?xml"):
        return "application/xml"
    if b"\x00" in head:
        return "application/octet-stream"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        # A multi-byte character cut at the end of the head is still text.
        if e.start < len(head) - 3:
            return "application/octet-stream"
    return "text/plain"


def media_type(declared: str) -> str:
    """A declared Content-Type without its parameters, lower case (``text/csv``)."""
    return declared.split(";", 1)[0].strip().lower()
