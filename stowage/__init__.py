"""Stowage: durable, compliant per-tenant storage for ChatGPT apps.

This package holds what the components share: the command line (`stowage`),
the generated gateway↔worker contract (`stowage.v1`, generated from
`proto/stowage/v1/` by `make proto`, never edited by hand) and small helpers
for logging. It must not import the components' internals at import time.
"""

__all__: list[str] = []
