"""Files on the gateway: signed links to a tenant's files, and the route that serves them.

A tool result carries a short-lived URL on the gateway's own host
(``/t/<tenant>/files/<id>?…``) that a component PUTs a file's bytes to or
GETs them from; the bytes never pass through the model. The URL is the
authority: an HMAC-SHA256 under the tenant's key over tenant, user, file,
method, expiry (and, for an upload, the exact size and sha256). The route
streams the body to the worker (gRPC client stream) and the file back (server
stream), a piece at a time, so memory stays flat in the file's size.

Layers (``.importlinter``): ``_routes`` (the HTTP endpoint) → ``_links`` (the
links a tool result carries) → ``_keys`` (the signing keys, read from the
secrets directory) | ``_serving`` (response headers, byte ranges) →
``_signing`` (the signature, no I/O).
"""

from gateway.files._keys import SigningKeys
from gateway.files._links import Links
from gateway.files._routes import FileEndpoint

__all__ = ["FileEndpoint", "Links", "SigningKeys"]
