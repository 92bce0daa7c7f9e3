"""The files rows of ``make bench`` for a tenant whose files live in the Region's
S3-compatible bucket: MB/s through the platform beside aiobotocore moving the same bytes
to the same S3 server.

- **Platform**: a second worker, for the tenant ``bench-s3``, configured as the
  operator configures one for a Region with ``spec.objectStore``: its uploads go
  to the bucket as multipart uploads of ``PART`` bytes a part, its downloads are
  ranged GETs read a piece at a time. A PUT of the whole file to its signed link
  (gateway → gRPC client stream → worker → bucket), and a GET of the download link
  back, over HTTP from this process (httpx), as the database rows do
  (``bench._files``).
- **Baseline**: aiobotocore, the worker's own S3 client, configured as the worker
  configures it, on the same server: an upload is a multipart upload of the same
  parts under a fresh key, then a DeleteObjects of the previous version's key (the
  worker keeps each version under its own key and deletes the replaced one); a
  download is the same ranged GET, read in the same pieces.

The S3 server is moto's (``stowage_testing.s3``: in memory, on 127.0.0.1), so its
CPU is a column of its own; it is started for these rows and stopped after them.
Platform and baseline alternate ``repeats`` times in each direction.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from bench._files import (
    FILES_SPEC,
    FileRound,
    PlatformFiles,
    in_parallel,
    platform_moves,
    timed,
    wait_for_files,
    with_ratios,
)
from bench._stack import COLLECTIONS, OPEN_LIMITS
from stowage_testing.gateway import WORKER_POLICY, GatewayProcess, tenant_entry
from stowage_testing.issuer import Issuer
from stowage_testing.postgres import PostgresServer
from stowage_testing.s3 import REGION, S3Server, s3_server
from stowage_testing.worker import WorkerProcess, running_worker

TENANT = "bench-s3"
#: Bytes per multipart part, on both sides: the worker's default
#: (``STOWAGE_OBJECT_STORE_PART_BYTES``), set explicitly so the two cannot differ.
PART = 8 * 2**20
#: Bytes the worker asks of a download's body at a time (tenant_worker.files._bucket).
READ = 256 * 2**10
PLATFORM = "files via signed links, S3 bucket"
BASELINE = "aiobotocore, same parts"
_PREFIX = f"tenants/{TENANT}/"


@dataclass(frozen=True)
class BucketStack:
    server: S3Server
    bucket: str
    worker: WorkerProcess


def start_bucket_stack(stack: ExitStack, work: Path, postgres: PostgresServer) -> BucketStack:
    """Start moto's S3 server with a bucket, and the ``bench-s3`` worker storing files there."""
    server = stack.enter_context(s3_server(work / "s3"))
    bucket = server.create_bucket()
    database_url = postgres.sqlalchemy_url(postgres.create_database("bench_s3"))
    env = server.worker_env(bucket, _PREFIX, STOWAGE_OBJECT_STORE_PART_BYTES=str(PART))
    policy = {**WORKER_POLICY, "collections": COLLECTIONS, "files": FILES_SPEC}
    worker = stack.enter_context(
        running_worker(database_url, work / "worker-s3", policy, TENANT, env=env)
    )
    return BucketStack(server, bucket, worker)


def bucket_tenant(shell: GatewayProcess, issuer: Issuer, parts: BucketStack) -> dict[str, Any]:
    """The gateway's entry of the ``bench-s3`` tenant (files on, limits opened up)."""
    return tenant_entry(
        TENANT,
        shell,
        issuer,
        parts.worker.address,
        rateLimits=OPEN_LIMITS,
        collections=COLLECTIONS,
        files=FILES_SPEC,
    )


class _Baseline:
    """The same bytes put and got by aiobotocore, configured as the worker's client."""

    def __init__(self, server: S3Server, bucket: str, files: int) -> None:
        self.server, self.bucket = server, bucket
        # One session for every round: its client made for each round's event loop
        # finds the S3 service model already loaded, as a worker's long-lived client has.
        self.session = get_session()
        self.ids = [f"baseline/f{i}" for i in range(files)]
        #: Each file's current object: a fresh key per version, as the worker keeps them.
        self.current: dict[str, str] = {}

    def client(self) -> Any:
        """An S3 client context (``async with``), with the worker's settings
        (tenant_worker.files._bucket.Bucket)."""
        return self.session.create_client(
            "s3",
            endpoint_url=self.server.endpoint,
            region_name=REGION,
            aws_access_key_id=self.server.access_key_id,
            aws_secret_access_key=self.server.secret_access_key,
            config=AioConfig(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    async def upload(self, s3: Any, file_id: str, data: bytes) -> int:
        key = f"{_PREFIX}{file_id}/{uuid.uuid4().hex}"
        started = await s3.create_multipart_upload(Bucket=self.bucket, Key=key)
        upload_id = started["UploadId"]
        etags = []
        for number, at in enumerate(range(0, len(data), PART), start=1):
            answer = await s3.upload_part(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=data[at : at + PART],
            )
            etags.append({"ETag": answer["ETag"], "PartNumber": number})
        await s3.complete_multipart_upload(
            Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": etags}
        )
        old, self.current[file_id] = self.current.get(file_id), key
        if old is not None:
            await s3.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": old}], "Quiet": True}
            )
        return len(data)

    async def download(self, s3: Any, file_id: str, size: int) -> int:
        answer = await s3.get_object(
            Bucket=self.bucket, Key=self.current[file_id], Range=f"bytes=0-{size - 1}"
        )
        got = 0
        async with answer["Body"] as body:
            while got < size:
                piece = await body.read(min(READ, size - got))
                if not piece:
                    break
                got += len(piece)
        if got != size:
            raise RuntimeError(f"read {got} bytes of {size}")
        return got

    async def moves(self, direction: str, data: bytes, concurrency: int) -> int:
        async with self.client() as s3:
            if direction == "upload":
                jobs = [partial(self.upload, s3, f, data) for f in self.ids]
            else:
                jobs = [partial(self.download, s3, f, len(data)) for f in self.ids]
            return await in_parallel(concurrency, jobs, (ClientError, BotoCoreError))


def _first_versions(platform: PlatformFiles, baseline: _Baseline, data: bytes, conc: int) -> None:
    """Give every file of both sides a first version, untimed: every timed upload then
    replaces one (and deletes it), and the worker's S3 client is made."""
    failed = asyncio.run(platform_moves("upload", platform.upload_links(), data, conc))
    failed += asyncio.run(baseline.moves("upload", data, conc))
    if failed:
        raise RuntimeError(f"{failed} first uploads failed")


def _rounds(
    parts: BucketStack,
    url: str,
    token: str,
    groups: dict[str, list[int]],
    concurrency: int,
    size_mib: int,
    repeats: int,
) -> list[FileRound]:
    size = size_mib * 2**20
    # Four files a lane: a download round at a few hundred MB/s then lasts long enough
    # (about a second) for its clock, not its setup, to be what is measured.
    files = concurrency * 4
    data = os.urandom(size)
    print(f"  files in the bucket: {files} files of {size_mib} MiB, {concurrency} at a time, "
          f"{PART // 2**20} MiB parts", flush=True)  # fmt: skip
    assert parts.worker.proc is not None and parts.server.proc is not None
    moto = [parts.server.proc.pid]
    through_groups = {**groups, "worker": [parts.worker.proc.pid], "moto": moto}
    platform = PlatformFiles(url, token, files, size)
    baseline = _Baseline(parts.server, parts.bucket, files)
    _first_versions(platform, baseline, data, concurrency)
    rounds = []
    for _ in range(repeats):
        for direction in ("upload", "download"):
            links = (platform.upload_links if direction == "upload" else platform.download_links)()
            print(f"  {direction} {PLATFORM}, {concurrency} at a time", flush=True)
            through = partial(platform_moves, direction, links, data, concurrency)
            rounds.append(
                timed(PLATFORM, direction, concurrency, files, size, through_groups, through)
            )
            print(f"  {direction} {BASELINE}, {concurrency} at a time", flush=True)
            direct = partial(baseline.moves, direction, data, concurrency)
            rounds.append(timed(BASELINE, direction, concurrency, files, size, {"moto": moto},
                                direct))  # fmt: skip
    print(f"  sha256 of the bytes moved: {hashlib.sha256(data).hexdigest()[:16]}…", flush=True)
    return with_ratios(rounds, PLATFORM, BASELINE)


def bucket_files_rounds(
    work: Path,
    postgres: PostgresServer,
    shell: GatewayProcess,
    issuer: Issuer,
    write_tenants: Callable[[list[dict[str, Any]]], None],
    groups: dict[str, list[int]],
    *,
    concurrency: int,
    size_mib: int,
    repeats: int = 3,
) -> list[FileRound]:
    """Start the S3 server and the ``bench-s3`` worker, add its tenant to the gateway
    (``write_tenants(entries)`` writes the bench tenant and ``entries``), and measure:
    upload then download, platform beside baseline, alternating ``repeats`` times.
    ``groups``: the gateway's and PostgreSQL's processes. The server and the worker stop
    afterwards; the caller writes its tenants back."""
    with ExitStack() as stack:
        parts = start_bucket_stack(stack, work, postgres)
        write_tenants([bucket_tenant(shell, issuer, parts)])
        url = shell.url(TENANT)
        token = issuer.token(url, subject="bench-user", ttl=86400)
        wait_for_files(url, token)
        return _rounds(parts, url, token, groups, concurrency, size_mib, repeats)
