"""``stowage dev``: the whole platform on one machine, on embedded defaults.

Starts a worker for a demo tenant on SQLite under the data directory (as a
supervised subprocess, after running its migrations), then the gateway in this
process with the development authorization server's routes passed in at
``/dev-auth``. It records where it serves in the data directory
(:class:`PlatformRecord`), so ``stowage token`` mints tokens the gateway accepts.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from joserfc.jwk import RSAKey

from stowage_dev._keys import load_or_create_key
from stowage_dev._layout import AUTH_STATE_NAME, DEFAULT_DATA_DIR, DEV_KEY_NAME, PlatformRecord
from stowage_dev._supervisor import SupervisedWorker

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


def _write(path: Path, content: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(content, sort_keys=False))
    tmp.replace(path)


def _wait_serving(address: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError("the worker exited; see its log in the data directory")
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    raise RuntimeError(f"the worker did not become ready within {timeout}s")


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


def _write_config(data_dir: Path, tenant: str, worker_port: int, record: PlatformRecord) -> Path:
    """Write the demo tenant's worker policy and the gateway's tenants file; the policy's path."""
    policy = {
        "retention": {"collections": {"cache": 1}},
        "quotas": {"maxObjects": 100000, "maxBytes": "1Gi", "maxObjectBytes": "256Ki"},
        "collections": [{"name": "notes", "schemaVersion": 1, "schema": NOTES_SCHEMA}],
    }
    _write(data_dir / "policy.yaml", policy)
    _write(
        data_dir / "tenants.yaml",
        {
            "tenants": [
                {
                    "name": tenant,
                    "endpoint": f"127.0.0.1:{worker_port}",
                    "auth": {"issuer": record.issuer, "audience": record.audience(tenant)},
                    "rateLimits": {
                        "perUser": {"requestsPerMinute": 600, "burst": 100},
                        "perTenant": {"requestsPerMinute": 6000, "burst": 1000},
                    },
                    "collections": policy["collections"],
                    "retention": policy["retention"],
                }
            ]
        },
    )
    return data_dir / "policy.yaml"


def _worker(data_dir: Path, tenant: str, worker_port: int, policy_file: Path) -> SupervisedWorker:
    """The demo tenant's worker on SQLite, its migrations run; not started yet."""
    database_url = f"sqlite+aiosqlite:///{data_dir / (tenant + '.db')}"
    worker_cmd = [sys.executable, "-m", "stowage", "worker"]
    subprocess.run([*worker_cmd, "migrate", "--database-url", database_url], check=True)
    serve_args = [
        *("--database-url", database_url, "--tenant", tenant),
        *("--listen", f"127.0.0.1:{worker_port}", "--metrics-port", "0"),
        *("--policy-file", str(policy_file)),
    ]
    return SupervisedWorker([*worker_cmd, "serve", *serve_args], data_dir / "worker.log")


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


def _serve_gateway(
    data_dir: Path, port: int, tenant: str, log_level: str, record: PlatformRecord, key: RSAKey
) -> None:
    """Run the gateway with the development authorization server until it stops."""
    import uvicorn

    from gateway import GatewaySettings, create_app
    from stowage_dev._authserver import DevAuthServer

    settings = GatewaySettings(
        tenants_file=data_dir / "tenants.yaml",
        public_url=record.public_url,
        log_level=log_level,
    )
    auth = DevAuthServer(
        key,
        record.issuer,
        resources={record.audience(tenant)},
        state_file=data_dir / AUTH_STATE_NAME,
    )
    record.write(data_dir)
    print(_banner(record, data_dir, tenant), file=sys.stderr, flush=True)
    uvicorn.run(
        create_app(settings, extra_routes=auth.routes()),
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
    )


def run_dev(*, data_dir: Path, port: int, worker_port: int, tenant: str, log_level: str) -> int:
    from stowage import _logging

    _logging.configure(log_level)
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = load_or_create_key(data_dir / DEV_KEY_NAME)
    record = PlatformRecord(public_url=f"http://127.0.0.1:{port}")
    policy_file = _write_config(data_dir, tenant, worker_port, record)
    worker = _worker(data_dir, tenant, worker_port, policy_file)
    # uvicorn shuts down on SIGTERM and then re-raises it with the handler it
    # found; make that handler unwind this function so the worker is stopped too.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        _wait_serving(f"127.0.0.1:{worker_port}", worker.start())
        _serve_gateway(data_dir, port, tenant, log_level, record, key)
    finally:
        worker.stop()
    return 0
