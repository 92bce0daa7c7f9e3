"""The ``stowage`` command line.

Each component contributes its own subcommands through a ``register(subparsers)``
function in a private ``_cli`` module. Only the module that owns the command
being run is imported, so that running the worker never imports the gateway's
or the operator's dependencies; ``stowage --help`` imports them all. The
components declare their settings for :mod:`stowage.runtime.config`, which gives each
setting its flag and its variable; a setting that does not read exits with 2.
A command started by another process to end with it (``$STOWAGE_FOLLOW_PARENT``)
follows that process first (:mod:`stowage.runtime.lifeline`).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from stowage.runtime import lifeline
from stowage.runtime.config import ConfigError

#: Command → the module whose register(subparsers) adds it.
COMMANDS: dict[str, str] = {
    "worker": "tenant_worker._cli",
    "gateway": "gateway._cli",
    "access": "gateway._access_cli",
    "spaces": "gateway._spaces_cli",
    "token": "stowage_dev._cli",
    "dev": "stowage_dev._cli",
    "operator": "stowage_operator._cli",
    "dogfood": "stowage.dogfood._cli",
    "backup": "tenant_backup._cli",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stowage",
        description="Durable, compliant per-tenant storage for ChatGPT apps.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = [COMMANDS[command]] if command in COMMANDS else list(dict.fromkeys(COMMANDS.values()))
    for module_name in wanted:
        module = importlib.import_module(module_name)
        register: Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]
        register = module.register
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    # First, before the imports of a command: a child of ``stowage dev`` that
    # outlived it would serve on (see stowage.runtime.lifeline).
    lifeline.follow_parent_named_in(os.environ)
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv[0] if argv else None)
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int | None] = args.handler
    try:
        status = handler(args)
    except ConfigError as e:
        # A variable that does not read, or a missing setting: a usage error, like a bad flag.
        print(f"stowage {args.command}: {e}", file=sys.stderr)
        status = 2
    sys.exit(status or 0)
