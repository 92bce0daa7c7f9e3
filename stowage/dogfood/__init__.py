"""``stowage dogfood``: the storage-path check a platform team runs against a tenant.

Before a tenant launches and after every upgrade (the chart's ``helm test``
hook runs it), the check calls the tenant's MCP URL with a bearer token, as
ChatGPT would, and proves the promises of the storage path one step at a time:
save, a conflict on a stale ``expected_version``, a replay with the same
idempotency key, a write over ``quotas.maxObjectBytes``, a read of an object
stored under an older schema version (through a canary object each run leaves
in every declared collection for the next), export, and erasure of its own
test user. It prints one line per step and exits non-zero on a failure.

What it must not do:

- import the gateway, the tenant worker or the operator: it is a client of the
  public MCP surface only, like any other (import-linter keeps this);
- touch anything but the token's own user: its objects have ``dogfood-`` ids,
  and its erase step erases that user, so the token must belong to a
  dedicated test user;
- print or log the token.

Modules: ``_cli`` (the command), ``_check`` (the steps and the loop that walks
them), ``_session`` (the MCP client adapter), ``_sample`` (objects a
collection's schema accepts), ``_settings`` (the run's settings).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stowage.dogfood._check import Status, StepResult, run_check
    from stowage.dogfood._settings import DogfoodSettings

__all__ = ["DogfoodSettings", "Status", "StepResult", "run_check"]


def __getattr__(name: str) -> Any:
    # Lazy: building the `stowage` parser imports this package's _cli and must not
    # pay for the mcp client on the way.
    if name in ("Status", "StepResult", "run_check"):
        from stowage.dogfood import _check

        return getattr(_check, name)
    if name == "DogfoodSettings":
        from stowage.dogfood._settings import DogfoodSettings

        return DogfoodSettings
    raise AttributeError(name)
