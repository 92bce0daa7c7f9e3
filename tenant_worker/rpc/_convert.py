"""Domain records ↔ protobuf messages (no I/O)."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from stowage.v1 import worker_pb2 as pb
from tenant_worker._records import (
    IdentityRecord,
    ObjectRecord,
    PreferencesRecord,
    RevocationRecord,
)
from tenant_worker.storage._json import dumps


def timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def object_message(r: ObjectRecord) -> pb.StoredObject:
    msg = pb.StoredObject(
        collection=r.collection,
        id=r.id,
        data_json=dumps(r.data),
        schema_version=r.schema_version,
        version=r.version,
        created_at=timestamp(r.created_at),
        updated_at=timestamp(r.updated_at),
        correlation_id=r.correlation_id,
        size_bytes=r.size_bytes,
    )
    if r.expires_at is not None:
        msg.expires_at.CopyFrom(timestamp(r.expires_at))
    return msg


def preferences_message(p: PreferencesRecord) -> pb.Preferences:
    msg = pb.Preferences(data_json=dumps(p.data), version=p.version)
    if p.updated_at is not None:
        msg.updated_at.CopyFrom(timestamp(p.updated_at))
    return msg


def identity_message(i: IdentityRecord) -> pb.IdentityLink:
    return pb.IdentityLink(issuer=i.issuer, subject=i.subject, created_at=timestamp(i.created_at))


def revocation_message(r: RevocationRecord) -> pb.Revocation:
    return pb.Revocation(
        id=r.id,
        identity=r.identity or "",
        all_identities=r.identity is None,
        revoked_before=timestamp(r.revoked_before),
        recorded_at=timestamp(r.recorded_at),
    )
