"""Files on the gateway: signed links to a tenant's files and to a user's export archive,
and the route that serves them.

A tool result carries a short-lived URL on the gateway's own host
(``/t/<tenant>/files/<id>?…``) that a component PUTs a file's bytes to or
GETs them from; the bytes never pass through the model. The URL is the
authority: an HMAC-SHA256 under the tenant's key over tenant, user, file,
method, expiry (and, for an upload, the exact size and sha256). The route
streams the body to the worker (gRPC client stream) and the file back (server
stream), a piece at a time, so memory stays flat in the file's size. An
export link (``/t/<tenant>/files/export?…``, signed as one) streams the user's
export as a tar archive, its files as the worker streams them (``_archive``).

Layers (``.importlinter``): ``_cors`` (CORS of link paths: any origin, no
credentials) | ``_routes`` (the HTTP endpoint) → ``_links`` (the
links a tool result carries) | ``_archive`` (the export archive's stream) →
``_keys`` (the signing keys, read from the keys directory) | ``_serving``
(response headers, byte ranges) | ``_tar`` (tar framing, no I/O) →
``_signing`` (the signature, no I/O). The keys are derived per tenant from
the gateway's master keys (``--files-keys-dir``; ``_keys`` says how, and how
a rotation keeps earlier links working).
"""

from gateway.files._cors import LinkCors
from gateway.files._keys import CURRENT_KEY, PREVIOUS_KEY, ROTATED_AT, SigningKeys, tenant_key
from gateway.files._links import Links
from gateway.files._routes import FileEndpoint

__all__ = [
    "CURRENT_KEY",
    "PREVIOUS_KEY",
    "ROTATED_AT",
    "FileEndpoint",
    "LinkCors",
    "Links",
    "SigningKeys",
    "tenant_key",
]
