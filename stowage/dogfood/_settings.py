"""What one dogfood run needs, built once at the entry point. No I/O here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from stowage import tenant_spec

#: The platform's default ``quotas.maxObjectBytes`` (256Ki), used unless told otherwise.
DEFAULT_MAX_OBJECT_BYTES = tenant_spec.Quotas.max_object_bytes
DEFAULT_TIMEOUT = 60.0
TOKEN_ENV = "STOWAGE_DOGFOOD_TOKEN"
MAX_OBJECT_BYTES_ENV = "STOWAGE_DOGFOOD_MAX_OBJECT_BYTES"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the flag and variable."""


def parse_quantity(text: str, where: str) -> int:
    """A byte count or a Kubernetes quantity, read as the Tenant spec reads it (``256Ki``)."""
    try:
        value = tenant_spec.parse_quantity(text, where)
    except tenant_spec.SpecError as e:
        raise SettingsError(f"{e}") from e
    if value < 1:
        raise SettingsError(f"{where}: must be at least one byte")
    return value


@dataclass(frozen=True)
class DogfoodSettings:
    """One run of the check against one tenant.

    - ``mcp_url``: the tenant's MCP URL, ``https://<gateway>/t/<tenant>/mcp``.
    - ``token``: a bearer token of a dedicated test user, from ``--token-file``
      or ``STOWAGE_DOGFOOD_TOKEN``; never printed or logged.
    - ``timeout``: seconds the whole run may take (``--timeout``).
    - ``max_object_bytes``: the tenant's ``quotas.maxObjectBytes``
      (``--max-object-bytes`` or ``STOWAGE_DOGFOOD_MAX_OBJECT_BYTES``; default 256Ki).
    """

    mcp_url: str
    token: str = field(repr=False)
    timeout: float = DEFAULT_TIMEOUT
    max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES

    @classmethod
    def build(
        cls,
        environ: Mapping[str, str],
        *,
        mcp_url: str,
        token_text: str | None,
        timeout: float | None,
        max_object_bytes: str | None,
    ) -> DogfoodSettings:
        """``token_text`` is the token file's content, if a file was given."""
        if not mcp_url.startswith(("http://", "https://")):
            raise SettingsError(f"--mcp-url: {mcp_url!r} is not an http(s) URL")
        token = (token_text if token_text is not None else environ.get(TOKEN_ENV, "")).strip()
        if not token:
            raise SettingsError(f"a bearer token is required: --token-file PATH or ${TOKEN_ENV}")
        if timeout is not None and timeout <= 0:
            raise SettingsError("--timeout: must be a positive number of seconds")
        limit = max_object_bytes or environ.get(MAX_OBJECT_BYTES_ENV)
        return cls(
            mcp_url=mcp_url,
            token=token,
            timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
            max_object_bytes=(
                parse_quantity(limit, f"--max-object-bytes / ${MAX_OBJECT_BYTES_ENV}")
                if limit
                else DEFAULT_MAX_OBJECT_BYTES
            ),
        )
