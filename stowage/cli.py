"""The ``stowage`` command line.

Each component contributes its own subcommands through a ``register(subparsers)``
function in a private ``_cli`` module, imported lazily so that running the
worker never imports the operator's dependencies and vice versa.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

# (module, what it adds) — each module defines register(subparsers) -> None.
_COMPONENTS: tuple[tuple[str, str], ...] = (
    ("tenant_worker._cli", "worker"),
    ("gateway._cli", "gateway, token, dev"),
    ("stowage_operator._cli", "operator"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stowage",
        description="Durable, compliant per-tenant storage for ChatGPT apps.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name, _ in _COMPONENTS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name is None or not module_name.startswith(e.name):
                raise
            continue
        register: Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]
        register = module.register
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int | None] = args.handler
    sys.exit(handler(args) or 0)
