"""The tenants' link signing keys, derived from the gateway's master keys.

The gateway reads one directory (``--files-keys-dir``): in a cluster the
chart's Secret ``<release>-files-keys`` mounted there, in development a
directory under the data directory. It holds

- ``current`` (:data:`CURRENT_KEY`): the master key that signs new links, at
  least 32 characters of random text;
- ``previous`` (:data:`PREVIOUS_KEY`, optional): the master key before the
  last rotation, still accepted for links signed before it;
- ``rotated-at`` (:data:`ROTATED_AT`, optional): when the rotation happened,
  Unix seconds. With it, ``previous`` is accepted only for a link that expires
  by ``rotated-at`` + the link lifetime + :data:`ROTATION_SLACK` (a link it
  signed before the rotation), so a rotation ends the old key within minutes;
  without it, ``previous`` is accepted until it is removed.

A tenant's key is ``HMAC-SHA256(master, "stowage file links v1\\n" + tenant)``
(:func:`tenant_key`, a PRF used as a key derivation function as in NIST SP
800-108): one per tenant, none of them stored, no Secret per tenant, and a
key learnt for one tenant tells nothing of another's or of the master. The
files are read at each use, so a rotated Secret applies as soon as the
kubelet has updated the mount.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from gateway._errors import LinksUnavailable

#: The files of the keys directory (the chart's Secret has these keys).
CURRENT_KEY = "current"
PREVIOUS_KEY = "previous"
ROTATED_AT = "rotated-at"
#: The shortest master key accepted: 256 bits of a random, hex or base64 text.
MIN_KEY_LENGTH = 32
#: How long after a rotation a gateway replica may still sign with the previous key
#: (the kubelet updates a mounted Secret within about a minute), seconds.
ROTATION_SLACK = 300
_LABEL = b"stowage file links v1\n"


def tenant_key(master: bytes, tenant: str) -> bytes:
    """``tenant``'s signing key under ``master``."""
    return hmac.new(master, _LABEL + tenant.encode(), hashlib.sha256).digest()


class SigningKeys:
    """The keys that sign (:meth:`signing`) and verify (:meth:`verifying`) a tenant's links."""

    def __init__(self, keys_dir: Path | None, link_seconds: int = 900) -> None:
        self._dir = keys_dir
        self._link_seconds = link_seconds

    def signing(self, tenant: str) -> bytes:
        """The key new links of ``tenant`` are signed with; LinksUnavailable when there is none."""
        return tenant_key(self._current(), tenant)

    def verifying(self, tenant: str, expires: int) -> list[bytes]:
        """The keys a link of ``tenant`` expiring at ``expires`` may be signed with."""
        keys = [tenant_key(self._current(), tenant)]
        previous = self._previous(expires)
        if previous is not None:
            keys.append(tenant_key(previous, tenant))
        return keys

    def _current(self) -> bytes:
        if self._dir is None:
            raise LinksUnavailable(
                "file links cannot be signed: the gateway has no keys directory "
                "(--files-keys-dir) holding its master key"
            )
        key = self._read(self._dir / CURRENT_KEY)
        if key is None:
            raise LinksUnavailable(
                f"file links cannot be signed: the gateway has no master key ({CURRENT_KEY!r} "
                "in its keys directory, the Secret <release>-files-keys in a cluster)"
            )
        return key

    def _previous(self, expires: int) -> bytes | None:
        assert self._dir is not None
        previous = self._read(self._dir / PREVIOUS_KEY)
        if previous is None:
            return None
        try:
            rotated_at = int((self._dir / ROTATED_AT).read_text().strip())
        except (OSError, ValueError):
            return previous  # no rotation time: accepted until removed
        if expires > rotated_at + self._link_seconds + ROTATION_SLACK:
            return None  # not a link signed before the rotation
        return previous

    @staticmethod
    def _read(path: Path) -> bytes | None:
        """The key in ``path``; None when absent or empty; LinksUnavailable when too short."""
        try:
            key = path.read_bytes().strip()
        except OSError:
            return None
        if not key:
            return None
        if len(key) < MIN_KEY_LENGTH:
            raise LinksUnavailable(
                f"file links cannot be signed: the gateway's master key {path.name!r} is "
                f"shorter than {MIN_KEY_LENGTH} characters"
            )
        return key
