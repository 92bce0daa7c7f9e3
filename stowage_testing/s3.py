"""A throwaway S3-compatible server on a free loopback port: moto in server mode.

moto's server speaks the S3 REST API over HTTP (SigV4-signed requests,
multipart uploads, ranges, batch deletes), keeps everything in memory, and
starts in about a second; given an ``Authority`` (a private CA made by the
test), it speaks HTTPS with a certificate that CA signed. ``s3_server()``
yields an ``S3Server`` that a test may stop (the store becomes unreachable, as
a bucket whose endpoint went away) and start again on the same port;
``client()`` is boto3's, for tests to look into the bucket themselves.
"""

from __future__ import annotations

import secrets
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from stowage_testing.tls import Authority
from stowage_testing.tools import free_port, missing, terminate

HOW = "install the dev extras (pip install -e '.[dev]', which brings moto[server])"
REGION = "eu-west-1"


@dataclass
class S3Server:
    """One moto server; every start begins with no buckets."""

    workdir: Path
    port: int = field(default_factory=free_port)
    access_key_id: str = field(default_factory=lambda: f"AKIA{secrets.token_hex(8).upper()}")
    secret_access_key: str = field(default_factory=lambda: secrets.token_urlsafe(30))
    proc: subprocess.Popen[bytes] | None = None
    #: The private CA that signs the server's certificate; None: plain HTTP.
    authority: Authority | None = None

    @property
    def endpoint(self) -> str:
        scheme = "http" if self.authority is None else "https"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path | None:
        """The CA certificate a client trusts the server by (PEM); None over plain HTTP."""
        return None if self.authority is None else self.workdir / "ca.pem"

    def _tls_args(self) -> list[str]:
        if self.authority is None:
            return []
        cert, key = self.authority.server("127.0.0.1")
        (self.workdir / "server.pem").write_bytes(cert)
        (self.workdir / "server-key.pem").write_bytes(key)
        (self.workdir / "ca.pem").write_text(self.authority.pem)
        return ["-c", str(self.workdir / "server.pem"), "-k", str(self.workdir / "server-key.pem")]

    @property
    def log_file(self) -> Path:
        return self.workdir / "moto.log"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 30.0) -> None:
        assert not self.running(), "already running"
        log = self.log_file.open("ab")
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)),
                *self._tls_args(),
            ],
            stdout=log,
            stderr=log,
        )
        log.close()
        try:
            self._wait_until_up(timeout)
        except BaseException:
            terminate(self.proc, grace=10)
            raise

    def _wait_until_up(self, timeout: float) -> None:
        assert self.proc is not None
        verify = True if self.ca_file is None else ssl.create_default_context(cafile=self.ca_file)
        deadline = time.monotonic() + timeout
        while True:
            try:
                answer = httpx.get(f"{self.endpoint}/moto-api/", timeout=1.0, verify=verify)
                if answer.status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto did not start: {self.log_file.read_text()[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server; its port refuses connections afterwards."""
        terminate(self.proc, grace=10)

    def client(self) -> Any:
        """boto3's S3 client for this server, to make buckets and look into them."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            verify=None if self.ca_file is None else str(self.ca_file),
        )

    def create_bucket(self, name: str | None = None) -> str:
        bucket = name or f"stowage-{secrets.token_hex(4)}"
        self.client().create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        return bucket

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object's key under ``prefix``, read from the server itself."""
        found: list[str] = []
        pages = self.client().get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=bucket, Prefix=prefix):
            found.extend(str(o["Key"]) for o in page.get("Contents") or ())
        return sorted(found)

    def open_uploads(self, bucket: str, prefix: str = "") -> list[str]:
        """Keys of the multipart uploads begun and neither completed nor aborted."""
        answer = self.client().list_multipart_uploads(Bucket=bucket, Prefix=prefix)
        return sorted(str(u["Key"]) for u in answer.get("Uploads") or ())

    def worker_env(self, bucket: str, prefix: str, **more: str) -> dict[str, str]:
        """A worker's variables for ``bucket``, as the operator sets them (over HTTPS,
        with the CA file its Region's ``caSecretRef`` would mount)."""
        ca = {} if self.ca_file is None else {"STOWAGE_OBJECT_STORE_CA_FILE": str(self.ca_file)}
        return {
            **ca,
            "STOWAGE_OBJECT_STORE_ENDPOINT": self.endpoint,
            "STOWAGE_OBJECT_STORE_BUCKET": bucket,
            "STOWAGE_OBJECT_STORE_REGION": REGION,
            "STOWAGE_OBJECT_STORE_PREFIX": prefix,
            "STOWAGE_OBJECT_STORE_ACCESS_KEY_ID": self.access_key_id,
            "STOWAGE_OBJECT_STORE_SECRET_ACCESS_KEY": self.secret_access_key,
            **more,
        }


@contextmanager
def s3_server(workdir: Path, authority: Authority | None = None) -> Iterator[S3Server]:
    """Start moto's S3 server (over HTTPS with a certificate ``authority`` signs, when
    given) and yield it; fail with what to install without moto."""
    try:
        import boto3  # noqa: F401
        import moto.server  # noqa: F401
    except ImportError:
        missing("moto's S3 server", HOW)
    workdir.mkdir(parents=True, exist_ok=True)
    server = S3Server(workdir, authority=authority)
    server.start()
    try:
        yield server
    finally:
        server.stop()


__all__ = ["REGION", "S3Server", "s3_server"]
