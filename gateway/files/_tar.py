"""A tar stream written a piece at a time: member headers, padding, the end. No I/O here.

POSIX.1-2001 (pax) headers, so names of any length and in any script travel as
UTF-8; each member's size is in its header, so a member's bytes can follow as
they arrive, padded to the 512-byte block at its end; two zero blocks end the
archive (:data:`END`). Nothing is held but a header.
"""

from __future__ import annotations

import re
import tarfile

BLOCK = 512
#: What ends an archive: two zero blocks.
END = bytes(2 * BLOCK)
#: The longest file name a member path ends in, in UTF-8 bytes (most file systems take 255).
MAX_NAME_BYTES = 200
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")


def header(path: str, size: int, mtime: float) -> bytes:
    """The header of a regular file ``path`` of ``size`` bytes, changed at ``mtime``."""
    info = tarfile.TarInfo(path)
    info.size, info.mtime, info.mode = size, int(mtime), 0o644
    info.type = tarfile.REGTYPE
    return info.tobuf(tarfile.PAX_FORMAT, encoding="utf-8", errors="strict")


def padding(size: int) -> bytes:
    """The zeros after a member of ``size`` bytes, up to the end of its last block."""
    return bytes(-size % BLOCK)


def member(path: str, data: bytes, mtime: float) -> bytes:
    """A whole member held in memory (a small one: the export's JSON, the manifest)."""
    return header(path, len(data), mtime) + data + padding(len(data))


def safe_name(name: str) -> str:
    """``name`` as the last part of a member path: one path segment, never ``.`` or ``..``,
    no control or characters file systems refuse, at most :data:`MAX_NAME_BYTES` bytes
    (the extension kept)."""
    plain = _UNSAFE.sub("_", name).strip()
    if plain.strip(".") == "":
        plain = "_" + plain if plain else "file"
    if len(plain.encode()) <= MAX_NAME_BYTES:
        return plain
    stem, dot, ext = plain.rpartition(".")
    if not dot or len(ext.encode()) > 16:
        stem, ext = plain, ""
    room = MAX_NAME_BYTES - len(ext.encode()) - (1 if ext else 0)
    cut = stem.encode()[:room].decode("utf-8", errors="ignore")
    return f"{cut}.{ext}" if ext else cut
