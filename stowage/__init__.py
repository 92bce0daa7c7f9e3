"""Stowage: durable, compliant per-tenant storage for ChatGPT apps.

The package has three roles, kept apart (import-linter checks each line below):

- **The contract** the components share, each fact written once (the modules at
  this level): ``stowage.v1``, the gateway↔worker messages generated from
  ``proto/stowage/v1/`` by ``make proto`` (never edited by hand);
  ``stowage.wire``, that contract beyond the messages (metadata keys, field
  paths); ``stowage.values``, what a stored value may be; ``stowage.crd``, the
  custom resources' group, version, kinds and plurals; ``stowage.revocation``,
  the revocation request both sides of ``RevokeAccess`` speak;
  ``stowage.tenant_spec``, the one reading of a Tenant spec. These import no
  component, no process machinery and no command line.
- **The process machinery** every entry point uses (``stowage.runtime``: settings,
  logging, supervised processes, lifelines). It knows no tenant or tool.
- **The command line** (``stowage.cli``, ``python -m stowage``), which imports only
  the component that owns the command being run, and the **dogfood client**
  (``stowage.dogfood``), a client of the MCP surface like any other.
"""

__all__: list[str] = []
