"""The Region's S3-compatible bucket, as the files services need it: the one adapter that
speaks S3 (aiobotocore: botocore's requests and SigV4 signing over aiohttp).

Every S3 or connection failure leaves here as the worker's own error, chained:
a missing object is :class:`ObjectMissing`, anything else
:class:`BucketUnavailable` (retriable), whose message names the endpoint and
bucket but never a credential.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AsyncExitStack, contextmanager
from typing import Any

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError
from botocore.exceptions import SSLError as BotoSSLError

from tenant_worker._errors import NotFound, StorageUnavailable
from tenant_worker.files._values import ObjectStoreConfig

log = logging.getLogger(__name__)

#: Bytes asked of a download's body at a time.
READ_BYTES = 256 * 2**10
#: Keys one DeleteObjects request may name (S3's limit).
DELETE_BATCH = 1000
_MISSING = {"NoSuchKey", "404", "NotFound", "NoSuchUpload"}
#: OpenSSL's reason in an error's text, up to the quote or bracket that wraps it.
_TLS_REASON = re.compile(r"\[SSL: [A-Z0-9_]+\][^'\"\]]*")


def _tls_reason(error: BaseException) -> str:
    """What the TLS check said (``[SSL: CERTIFICATE_VERIFY_FAILED] …``), else the error's type."""
    found = _TLS_REASON.search(str(error))
    return found.group(0).strip() if found else type(error).__name__


class BucketUnavailable(StorageUnavailable):
    """The object store did not answer, or refused the request; retriable."""

    def __init__(self, message: str, refused: bool = False) -> None:
        super().__init__(message, store="object-store", refused=refused)


class ObjectMissing(NotFound):
    """The object is not in the bucket (deleted, or never completed)."""


class Bucket:
    """One tenant's objects in the Region's bucket; its client is made on first use.

    Methods take object names under the tenant's prefix (``files/<content>``)
    and add the prefix themselves.
    """

    def __init__(self, config: ObjectStoreConfig) -> None:
        self.config = config
        self._exits = AsyncExitStack()
        self._client: Any = None
        self._lock = asyncio.Lock()

    def key(self, name: str) -> str:
        """The object's key in the bucket: the tenant's prefix, then its name."""
        return f"{self.config.prefix}{name}"

    def _extra(self) -> dict[str, str]:
        """Server-side encryption arguments of a write."""
        if not self.config.sse:
            return {}
        extra = {"ServerSideEncryption": self.config.sse}
        if self.config.sse_kms_key_id:
            extra["SSEKMSKeyId"] = self.config.sse_kms_key_id
        return extra

    async def _s3(self) -> Any:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                c = self.config
                self._client = await self._exits.enter_async_context(
                    get_session().create_client(
                        "s3",
                        endpoint_url=c.endpoint,
                        region_name=c.region,
                        aws_access_key_id=c.access_key_id,
                        aws_secret_access_key=c.secret_access_key,
                        verify=c.ca_file or True,
                        config=AioConfig(
                            signature_version="s3v4",
                            s3={"addressing_style": "path" if c.path_style else "virtual"},
                            retries={"max_attempts": 3, "mode": "standard"},
                            connect_timeout=5,
                            read_timeout=60,
                            # Checksums only where S3 requires them: many S3-compatible
                            # servers do not take the newer trailing checksums.
                            request_checksum_calculation="when_required",
                            response_checksum_validation="when_required",
                        ),
                    )
                )
        return self._client

    async def close(self) -> None:
        await self._exits.aclose()
        self._client = None

    @contextmanager
    def _translated(self, doing: str) -> Iterator[None]:
        where = f"object store {self.config.endpoint} (bucket {self.config.bucket})"
        try:
            yield
        except ClientError as e:
            error = e.response.get("Error") or {}
            code = str(error.get("Code") or "")
            if code in _MISSING:
                raise ObjectMissing(f"the file's bytes are gone from the {where}") from e
            raise BucketUnavailable(
                f"the {where} refused to {doing}: {code or 'error'} "
                f"{error.get('Message') or ''}".rstrip(),
                refused=True,
            ) from e
        except (BotoSSLError, aiohttp.ClientSSLError, ssl.SSLError) as e:
            raise BucketUnavailable(
                f"the {where} could not be reached to {doing}: its TLS certificate was not "
                f"accepted ({_tls_reason(e)}); a private CA's certificate goes in the Region's "
                "spec.objectStore.caSecretRef"
            ) from e
        except (TimeoutError, BotoCoreError, aiohttp.ClientError, OSError) as e:
            raise BucketUnavailable(
                f"the {where} could not be reached to {doing}: {type(e).__name__}"
            ) from e

    # -- writing ------------------------------------------------------------------------

    async def put(self, key: str, data: bytes) -> None:
        s3 = await self._s3()
        with self._translated("store an object"):
            await s3.put_object(
                Bucket=self.config.bucket, Key=self.key(key), Body=data, **self._extra()
            )

    async def start_multipart(self, key: str) -> str:
        s3 = await self._s3()
        with self._translated("start a multipart upload"):
            answer = await s3.create_multipart_upload(
                Bucket=self.config.bucket, Key=self.key(key), **self._extra()
            )
        return str(answer["UploadId"])

    async def put_part(self, key: str, upload_id: str, number: int, data: bytes) -> str:
        """Send part ``number`` (from 1); its ETag."""
        s3 = await self._s3()
        with self._translated("store a part"):
            answer = await s3.upload_part(
                Bucket=self.config.bucket,
                Key=self.key(key),
                UploadId=upload_id,
                PartNumber=number,
                Body=data,
            )
        return str(answer["ETag"])

    async def complete_multipart(self, key: str, upload_id: str, etags: Sequence[str]) -> None:
        s3 = await self._s3()
        parts = [{"ETag": etag, "PartNumber": n} for n, etag in enumerate(etags, start=1)]
        with self._translated("complete a multipart upload"):
            await s3.complete_multipart_upload(
                Bucket=self.config.bucket,
                Key=self.key(key),
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        s3 = await self._s3()
        try:
            with self._translated("abort a multipart upload"):
                await s3.abort_multipart_upload(
                    Bucket=self.config.bucket, Key=self.key(key), UploadId=upload_id
                )
        except ObjectMissing:
            pass  # already aborted or completed: nothing of it is kept either way

    async def abort_uploads_of(self, key: str) -> int:
        """Abort every multipart upload still open for ``key``; how many there were."""
        s3 = await self._s3()
        with self._translated("list multipart uploads"):
            answer = await s3.list_multipart_uploads(
                Bucket=self.config.bucket, Prefix=self.key(key)
            )
        found = [u for u in answer.get("Uploads") or () if u.get("Key") == self.key(key)]
        for upload in found:
            await self.abort_multipart(key, str(upload["UploadId"]))
        return len(found)

    # -- reading ------------------------------------------------------------------------

    async def size(self, key: str) -> int | None:
        """The object's length in bytes, or None when there is no such object."""
        s3 = await self._s3()
        try:
            with self._translated("look up an object"):
                answer = await s3.head_object(Bucket=self.config.bucket, Key=self.key(key))
        except ObjectMissing:
            return None
        return int(answer["ContentLength"])

    async def open(self, key: str, start: int, length: int) -> AsyncIterator[bytes]:
        """``length`` bytes of the object from ``start``, a piece at a time.

        The request is made here, so a missing object or an unreachable store is
        known before the caller sends anything on.
        """
        s3 = await self._s3()
        with self._translated("read an object"):
            answer = await s3.get_object(
                Bucket=self.config.bucket,
                Key=self.key(key),
                Range=f"bytes={start}-{start + max(length, 1) - 1}",
            )
        return self._pieces(answer["Body"], length)

    async def _pieces(self, stream: Any, length: int) -> AsyncIterator[bytes]:
        left = length
        async with stream as body:
            while left > 0:
                with self._translated("read an object"):
                    piece = await body.read(min(READ_BYTES, left))
                if not piece:
                    raise ObjectMissing(
                        f"the object store ended the file's bytes {left} bytes early; "
                        "download it again"
                    )
                left -= len(piece)
                yield piece

    # -- deleting -----------------------------------------------------------------------

    async def delete(self, keys: Sequence[str]) -> set[str]:
        """Delete ``keys`` (missing ones count as deleted); the keys that are gone."""
        s3 = await self._s3()
        gone: set[str] = set()
        for i in range(0, len(keys), DELETE_BATCH):
            batch = list(keys[i : i + DELETE_BATCH])
            with self._translated("delete objects"):
                answer = await s3.delete_objects(
                    Bucket=self.config.bucket,
                    Delete={"Objects": [{"Key": self.key(k)} for k in batch], "Quiet": True},
                )
            failed = {str(e.get("Key")) for e in answer.get("Errors") or ()}
            gone.update(k for k in batch if self.key(k) not in failed)
            for error in answer.get("Errors") or ():
                log.warning(
                    "object store kept an object it was asked to delete: %s",
                    error.get("Code"),
                )
        return gone


__all__ = ["Bucket", "BucketUnavailable", "ObjectMissing"]
