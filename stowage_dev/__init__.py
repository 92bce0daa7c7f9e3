"""The dev platform: the whole of Stowage on one machine, for development only.

``stowage dev`` runs a demo tenant's worker (supervised) and the gateway with a
development OAuth authorization server passed in as extra routes;
``stowage token`` mints tokens with the dev key. Nothing here is part of the
product: the gateway, the worker and the operator never import this package
(import-linter keeps it so); it imports the gateway to run it.

Layers (each imports only from the ones below it):

- entry points: ``_cli`` (``stowage dev``, ``stowage token``), ``_platform``
  (starting and stopping the platform);
- the authorization server: ``_authserver`` (its HTTP routes), ``_oauth``
  (authlib's server wired to the state and keys), ``_consent`` (the page);
- adapters: ``_supervisor`` (the worker process), ``_client_documents``
  (fetching client ID metadata documents), ``_authstate`` (clients, grants and
  refresh tokens in a JSON file), ``_keys`` (the signing key and tokens);
- values: ``_layout`` (file names, where the platform serves).

Tests use :class:`DevAuthServer` as a tenant's issuer.
"""

from __future__ import annotations

from stowage_dev._authserver import DevAuthServer
from stowage_dev._keys import DEFAULT_SCOPES, load_or_create_key, public_jwks, sign_token

__all__ = ["DEFAULT_SCOPES", "DevAuthServer", "load_or_create_key", "public_jwks", "sign_token"]
