"""``stowage dogfood``: run the storage-path check against a tenant's MCP URL."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from stowage.dogfood._settings import (
    DEFAULT_TIMEOUT,
    MAX_OBJECT_BYTES_ENV,
    TOKEN_ENV,
    DogfoodSettings,
    SettingsError,
)

#: Exit codes: every step passed (or did not apply); a step failed; the check could not run.
EXIT_PASSED, EXIT_FAILED, EXIT_UNUSABLE = 0, 1, 2

_EPILOG = f"""\
The token's user is the test user: the check writes objects with ids starting
with dogfood-, erases ALL of that user's data (my_data_erase) and then leaves
one canary object per declared collection for the next run. Use a token of a
dedicated test user, never a real user's.

Exit status: 0 every step passed or did not apply (N/A, with the reason),
1 a step failed (its line says FAIL), 2 the check could not run (bad
arguments, unreachable URL, token refused: HTTP 401/403 on connect).

Environment: {TOKEN_ENV} (the token, when --token-file is not given),
{MAX_OBJECT_BYTES_ENV} (as --max-object-bytes)."""


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    dogfood = subparsers.add_parser(
        "dogfood",
        help="check a tenant's storage path end to end through its MCP URL",
        description="Save, conflict, replay, quota, a read under an older schema version, "
        "export and erase, through a tenant's MCP URL as a client sees it; one line per step.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dogfood.add_argument(
        "--mcp-url", required=True, help="the tenant's MCP URL, https://<gateway>/t/<tenant>/mcp"
    )
    dogfood.add_argument(
        "--token-file",
        type=Path,
        help=f"file holding a bearer token of a dedicated test user (default: ${TOKEN_ENV})",
    )
    dogfood.add_argument(
        "--timeout",
        type=float,
        help=f"seconds the whole check may take (default {DEFAULT_TIMEOUT:g})",
    )
    dogfood.add_argument(
        "--max-object-bytes",
        help="the tenant's quotas.maxObjectBytes, e.g. 256Ki "
        f"(default: ${MAX_OBJECT_BYTES_ENV}, else 256Ki, the platform default)",
    )
    dogfood.set_defaults(handler=_dogfood)


def _settings(args: argparse.Namespace) -> DogfoodSettings:
    token_text = None
    if args.token_file is not None:
        try:
            token_text = args.token_file.read_text()
        except OSError as e:
            raise SettingsError(f"--token-file: cannot read {args.token_file}: {e.strerror}") from e
    return DogfoodSettings.build(
        os.environ,
        mcp_url=args.mcp_url,
        token_text=token_text,
        timeout=args.timeout,
        max_object_bytes=args.max_object_bytes,
    )


def _dogfood(args: argparse.Namespace) -> int:
    import anyio

    from stowage.dogfood._check import Status, StepResult, new_run_id, run_check
    from stowage.dogfood._session import ConnectFailed

    try:
        settings = _settings(args)
    except SettingsError as e:
        print(f"stowage dogfood: {e}", file=sys.stderr)
        return EXIT_UNUSABLE
    run_id = new_run_id()
    print(f"stowage dogfood {settings.mcp_url} (run and correlation id {run_id})", flush=True)

    def report(result: StepResult) -> None:
        print(f"{result.status.value:<4}  {result.step:<12}  {result.detail}", flush=True)

    started = time.monotonic()
    try:
        results = anyio.run(run_check, settings, report, run_id)
    except ConnectFailed as e:
        print(f"stowage dogfood: {e}", file=sys.stderr)
        return EXIT_UNUSABLE
    counts = {status: sum(r.status is status for r in results) for status in Status}
    print(
        f"{counts[Status.PASSED]} passed, {counts[Status.FAILED]} failed, "
        f"{counts[Status.NOT_APPLICABLE]} not applicable, {counts[Status.SKIPPED]} skipped "
        f"in {time.monotonic() - started:.1f} s",
        flush=True,
    )
    return EXIT_FAILED if counts[Status.FAILED] else EXIT_PASSED
