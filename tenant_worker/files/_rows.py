"""What the files services share: the tenant's files settings, rows as records, liveness,
the quota check of bytes as they arrive."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from stowage.tenant_spec import Files as FilesSettings
from tenant_worker._errors import InvalidArgument, NotFound
from tenant_worker.files._values import FILE_ID, PENDING_LIFETIME, FileRecord
from tenant_worker.storage._models import StoredFile
from tenant_worker.storage._store import Store, Totals, quota_refusal

COLUMNS = (
    StoredFile.id,
    StoredFile.owner,
    StoredFile.name,
    StoredFile.declared_type,
    StoredFile.sniffed_type,
    StoredFile.size_bytes,
    StoredFile.sha256,
    StoredFile.version,
    StoredFile.content,
    StoredFile.chunk_bytes,
    StoredFile.created_at,
    StoredFile.updated_at,
    StoredFile.expires_at,
    StoredFile.correlation_id,
    StoredFile.storage,
)


def settings(store: Store) -> FilesSettings:
    """The tenant's ``spec.files``; NotFound when the tenant stores no files."""
    files = store.policy().spec.files
    if files is None:
        raise NotFound("this app stores no files (its Tenant spec has no files section)")
    return files


def check_file_id(file_id: str) -> None:
    if not FILE_ID.match(file_id):
        raise InvalidArgument("id", "a file id is 32 lower-case hex characters (from files_list)")


def retention(store: Store) -> timedelta | None:
    days = store.policy().spec.retention.default_days
    return timedelta(days=days) if days is not None else None


def expiry(row: Any, kept: timedelta | None) -> datetime | None:
    """When the file stops existing: its TTL, the tenant's retention, or an upload never made."""
    candidates: list[datetime] = [row.expires_at] if row.expires_at is not None else []
    if kept is not None:
        candidates.append(row.updated_at + kept)
    if row.version == 0:
        candidates.append(row.created_at + PENDING_LIFETIME)
    return min(candidates) if candidates else None


def expired_clause(kept: timedelta | None, now: datetime) -> ColumnElement[bool]:
    """Files whose time is up (the SQL twin of :func:`expiry`)."""
    clauses: list[ColumnElement[bool]] = [
        and_(StoredFile.expires_at.is_not(None), StoredFile.expires_at <= now),
        and_(StoredFile.version == 0, StoredFile.created_at <= now - PENDING_LIFETIME),
    ]
    if kept is not None:
        clauses.append(StoredFile.updated_at <= now - kept)
    return or_(*clauses)


def to_record(row: Any, kept: timedelta | None) -> FileRecord:
    return FileRecord(
        id=row.id,
        name=row.name,
        declared_type=row.declared_type,
        sniffed_type=row.sniffed_type,
        size_bytes=row.size_bytes,
        sha256=row.sha256,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        expires_at=expiry(row, kept),
        correlation_id=row.correlation_id,
    )


async def owned_row(
    conn: AsyncConnection, owner: str, file_id: str, now: datetime, kept: timedelta | None
) -> Any:
    """The caller's live file ``file_id``; NotFound for another's, a missing or an expired one."""
    row = (
        await conn.execute(
            select(*COLUMNS).where(StoredFile.id == file_id, StoredFile.owner == owner)
        )
    ).one_or_none()
    if row is None or ((until := expiry(row, kept)) is not None and until <= now):
        raise NotFound(f"no file {file_id} (it was deleted, has expired, or is not yours)")
    return row


async def check_quota(store: Store, conn: AsyncConnection, owner: str, growth: int) -> None:
    """Refuse (QuotaExceeded) when the tenant or the user cannot store ``growth`` more bytes.

    Read afresh at each call, so an upload sees what other writes committed
    while its bytes were arriving.
    """
    if growth <= 0:
        return
    q = store.policy().quotas
    objects, used = await store.totals(conn)
    totals = Totals(objects, used)
    if q.per_user_max_bytes is not None:
        totals = Totals(objects, used, *await store.user_totals(conn, owner))
    refusal = quota_refusal(q, totals, 0, growth)
    if refusal is not None:
        raise refusal
