"""The tenants' signing keys, read from the gateway's secrets directory.

``<secrets dir>/tenant-<name>-files/signing-key`` (:func:`stowage.wire.files_secret_name`):
in a cluster the operator's Secret mounted there, in development and tests a
file written beside the tenants file. Read at each use, so a rotated key
applies at once (links signed with the old one stop working).
"""

from __future__ import annotations

from pathlib import Path

from gateway._errors import LinksUnavailable
from stowage.wire import FILES_SIGNING_KEY, files_secret_name

#: The shortest key accepted: 256 bits of a random, hex or base64 text.
MIN_KEY_LENGTH = 32


class SigningKeys:
    def __init__(self, secrets_dir: Path | None) -> None:
        self._dir = secrets_dir

    def key(self, tenant: str) -> bytes:
        """The tenant's key; LinksUnavailable saying what is missing when there is none."""
        if self._dir is None:
            raise LinksUnavailable(
                "file links cannot be signed: the gateway has no secrets directory "
                "(--secrets-dir) holding the tenant's signing key"
            )
        path = self._dir / files_secret_name(tenant) / FILES_SIGNING_KEY
        try:
            key = path.read_bytes().strip()
        except OSError as e:
            raise LinksUnavailable(
                f"file links cannot be signed: no signing key for tenant {tenant!r} at "
                f"{path} ({type(e).__name__})"
            ) from e
        if len(key) < MIN_KEY_LENGTH:
            raise LinksUnavailable(
                f"file links cannot be signed: the signing key at {path} is shorter than "
                f"{MIN_KEY_LENGTH} characters"
            )
        return key
