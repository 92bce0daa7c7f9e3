"""Stowage: durable, compliant per-tenant storage for ChatGPT apps.

This package holds what the components share, each fact written once:

- ``stowage.v1``: the generated gateway↔worker contract (from
  ``proto/stowage/v1/`` by ``make proto``, never edited by hand);
- ``stowage.wire``: that contract beyond the messages (metadata keys, patterns);
- ``stowage.crd``: the custom resources' group, version, kinds and plurals;
- ``stowage.revocation``: the revocation request both sides of ``RevokeAccess`` speak;
- ``stowage.tenant_spec``: the one reading of a Tenant spec;
- ``stowage.config``: the one reader of settings (flags and variables);
- ``stowage.cli``: the command line (``stowage``), and small helpers for logging.

It must not import the components' internals at import time (import-linter
keeps it so).
"""

__all__: list[str] = []
