"""``stowage dev``: the whole platform on one machine, on embedded defaults.

Starts a worker for a demo tenant on SQLite under the data directory (as a
supervised subprocess, after running its migrations), then the gateway in this
process with the development authorization server's routes passed in at
``/dev-auth``. It records where it serves in the data directory
(:class:`PlatformRecord`), so ``stowage token`` mints tokens the gateway accepts.

Each run is one instance of the platform: a fresh instance id, given to its
worker and named in the gateway's tenant entry, so the gateway's calls reach
its own worker or are refused (``stowage.wire.INSTANCE_KEY``); a worker of
another run, even of the same demo tenant, never serves them. Its children end
with it, however it ends (:mod:`stowage.runtime.lifeline`). A port another process
holds is an error at the start (exit status 1), never a running banner over a
worker that restarts in a loop.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from joserfc.jwk import RSAKey

from stowage.runtime.lifeline import child_environ
from stowage.runtime.supervisor import ListenError
from stowage.wire import INSTANCE_KEY, TENANT_KEY, new_instance_id
from stowage_dev._keys import load_or_create_key
from stowage_dev._layout import (
    AUTH_STATE_NAME,
    DEFAULT_DATA_DIR,
    DEV_KEY_NAME,
    FILES_KEYS_DIR_NAME,
    PlatformRecord,
)
from stowage_dev._supervisor import SupervisedWorker, claim_port

if TYPE_CHECKING:
    import uvicorn

NOTES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["title"],
    "properties": {
        "title": {"type": "string", "maxLength": 200, "description": "A short title."},
        "body": {"type": "string", "description": "The note's text."},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": False,
}


#: The demo tenant's component (MCP Apps): built from components/notes/ by `make components`.
NOTES_COMPONENT_HTML = Path(__file__).resolve().parent / "components" / "notes.html"


def notes_component() -> dict[str, Any]:
    """The demo tenant's notes component, as its spec declares it."""
    return {
        "name": "notes",
        "title": "Notes",
        "description": "The user's notes: a list to pick from and an editor that saves safely.",
        "html": NOTES_COMPONENT_HTML.read_text(encoding="utf-8"),
        "tools": ["notes_list", "notes_get", "notes_save"],
        "prefersBorder": True,
    }


def _write(path: Path, content: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(content, sort_keys=False))
    tmp.replace(path)


class StartError(Exception):
    """The platform cannot start; the message says why."""


def _wait_serving(
    address: str, proc: subprocess.Popen[bytes], tenant: str, instance: str, timeout: float = 30
) -> None:
    """Return once the worker answers on ``address`` as this run's ``instance``.

    A call that names the instance, not a health check: the worker of another
    run would pass that one. Raises StartError when the worker exits first, when
    another worker answers there, or after ``timeout`` seconds.
    """
    import grpc

    from stowage.v1 import worker_pb2, worker_pb2_grpc

    metadata = ((TENANT_KEY, tenant), (INSTANCE_KEY, instance))
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        stub = worker_pb2_grpc.TenantWorkerStub(channel)  # type: ignore[no-untyped-call]
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise StartError(
                    f"the worker exited with status {proc.returncode}; see worker.log in the "
                    "data directory"
                )
            try:
                stub.ListRevocations(
                    worker_pb2.ListRevocationsRequest(limit=1), metadata=metadata, timeout=1
                )
                return
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.PERMISSION_DENIED:
                    raise StartError(f"another worker answers on {address}: {e.details()}") from e
            time.sleep(0.1)
    raise StartError(f"the worker did not become ready within {timeout}s")


def _token_command(data_dir: Path, tenant: str) -> str:
    """The ``stowage token`` command line that mints a token for this platform."""
    command = f"stowage token --tenant {tenant} --user alice"
    cwd = Path.cwd()
    if data_dir != (cwd / DEFAULT_DATA_DIR).resolve():
        shown = data_dir.relative_to(cwd) if data_dir.is_relative_to(cwd) else data_dir
        command += f" --data-dir {shown}"
    return command


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _write_config(
    data_dir: Path, tenant: str, worker_port: int, record: PlatformRecord, instance: str
) -> Path:
    """Write the demo tenant's worker policy and the gateway's tenants file; the policy's path."""
    policy = {
        "retention": {"collections": {"cache": 1}},
        "quotas": {"maxObjects": 100000, "maxBytes": "1Gi", "maxObjectBytes": "256Ki"},
        "collections": [
            {"name": "notes", "schemaVersion": 1, "schema": NOTES_SCHEMA},
            # Shared: its objects live in spaces (spaces_create, spaces_invite --user bob).
            {"name": "lists", "shared": True, "schema": {"type": "object"}},
        ],
        # Dev tokens carry only the user's name as `sub`: members see each other by it.
        "identity": {"nameClaim": "sub"},
        # Files (files_create_upload, then PUT to the link): images, PDFs, text.
        "files": {"maxFileBytes": "25Mi"},
    }
    _write(data_dir / "policy.yaml", policy)
    _write(
        data_dir / "tenants.yaml",
        {
            "tenants": [
                {
                    "name": tenant,
                    "endpoint": f"127.0.0.1:{worker_port}",
                    "instance": instance,
                    "auth": {"issuer": record.issuer, "audience": record.audience(tenant)},
                    "rateLimits": {
                        "perUser": {"requestsPerMinute": 600, "burst": 100},
                        "perTenant": {"requestsPerMinute": 6000, "burst": 1000},
                    },
                    "collections": policy["collections"],
                    "identity": policy["identity"],
                    "retention": policy["retention"],
                    "files": policy["files"],
                    "components": [notes_component()],
                }
            ]
        },
    )
    return data_dir / "policy.yaml"


def _worker(
    data_dir: Path,
    tenant: str,
    worker_port: int,
    policy_file: Path,
    instance: str,
    on_give_up: Callable[[], None],
) -> SupervisedWorker:
    """The demo tenant's worker on SQLite, its migrations run; not started yet."""
    database_url = f"sqlite+aiosqlite:///{data_dir / (tenant + '.db')}"
    worker_cmd = [sys.executable, "-m", "stowage", "worker"]
    subprocess.run(
        [*worker_cmd, "migrate", "--database-url", database_url],
        check=True,
        env=child_environ(os.environ),
    )
    serve_args = [
        *("--database-url", database_url, "--tenant", tenant, "--instance", instance),
        *("--listen", f"127.0.0.1:{worker_port}", "--metrics-port", "0"),
        *("--policy-file", str(policy_file)),
    ]
    command = [*worker_cmd, "serve", *serve_args]
    return SupervisedWorker(command, data_dir / "worker.log", worker_port, on_give_up)


def _banner(record: PlatformRecord, data_dir: Path, tenant: str) -> str:
    """What ``stowage dev`` prints once it serves: where, and how to get a token."""
    return f"""
Stowage is running.
  MCP endpoint   {record.audience(tenant)}
  OAuth issuer   {record.issuer}   (dev login: any user name)
  metrics        {record.public_url}/metrics
  data           {data_dir}   (worker log: worker.log)

Get a token for scripts:
  {_token_command(data_dir, tenant)}
Or let an MCP client do the OAuth flow, e.g. the MCP Inspector:
  npx @modelcontextprotocol/inspector   (transport: Streamable HTTP, URL above)
"""


def _files_keys(data_dir: Path) -> Path:
    """The gateway's file-link master key under the data directory, made on the first run
    and kept (links handed out survive a restart); the directory."""
    from gateway.files import CURRENT_KEY

    keys = data_dir / FILES_KEYS_DIR_NAME
    keys.mkdir(mode=0o700, exist_ok=True)
    current = keys / CURRENT_KEY
    if not current.exists():
        tmp = keys / f"{CURRENT_KEY}.tmp"
        tmp.write_text(secrets.token_hex(32))
        tmp.chmod(0o600)
        tmp.replace(current)
    return keys


def _gateway(
    data_dir: Path, port: int, tenant: str, log_level: str, record: PlatformRecord, key: RSAKey
) -> uvicorn.Server:
    """The gateway with the development authorization server, not started yet."""
    import uvicorn

    from gateway import GatewaySettings, create_app
    from stowage_dev._authserver import DevAuthServer

    settings = GatewaySettings(
        tenants_file=data_dir / "tenants.yaml",
        public_url=record.public_url,
        files_keys_dir=_files_keys(data_dir),
        log_level=log_level,
    )
    auth = DevAuthServer(
        key,
        record.issuer,
        resources={record.audience(tenant)},
        state_file=data_dir / AUTH_STATE_NAME,
    )
    config = uvicorn.Config(
        create_app(settings, extra_routes=auth.routes()),
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
    )
    return uvicorn.Server(config)


def _stopper(gateway: uvicorn.Server) -> Callable[[], None]:
    """What stops ``gateway`` from another thread: its loop reads the flag."""

    def stop() -> None:
        gateway.should_exit = True

    return stop


def _run_gateway(gateway: uvicorn.Server) -> None:
    """Serve until stopped; StartError when it did not start (a port bind exits on its own)."""
    gateway.run()
    if not gateway.started:
        raise StartError("the gateway did not start; see the log above")


def _failed(message: str) -> int:
    print(f"stowage dev: {message}", file=sys.stderr, flush=True)
    return 1


def run_dev(*, data_dir: Path, port: int, worker_port: int, tenant: str, log_level: str) -> int:
    from stowage.runtime import logging as _logging

    _logging.configure(log_level)
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        claim_port("gateway", port)
        claim_port("worker", worker_port)
    except ListenError as e:
        return _failed(str(e))
    key = load_or_create_key(data_dir / DEV_KEY_NAME)
    record = PlatformRecord(public_url=f"http://127.0.0.1:{port}")
    instance = new_instance_id()
    policy_file = _write_config(data_dir, tenant, worker_port, record, instance)
    gateway = _gateway(data_dir, port, tenant, log_level, record, key)
    worker = _worker(data_dir, tenant, worker_port, policy_file, instance, _stopper(gateway))
    # uvicorn shuts down on SIGTERM and then re-raises it with the handler it
    # found; make that handler unwind this function so the worker is stopped too.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        _wait_serving(f"127.0.0.1:{worker_port}", worker.start(), tenant, instance)
        record.write(data_dir)
        print(_banner(record, data_dir, tenant), file=sys.stderr, flush=True)
        _run_gateway(gateway)
    except (StartError, ListenError) as e:
        return _failed(str(e))
    finally:
        worker.stop()
    return 0 if worker.failure is None else _failed(worker.failure)
