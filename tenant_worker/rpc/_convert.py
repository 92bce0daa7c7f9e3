"""Domain records ↔ protobuf messages (no I/O)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from stowage.v1 import worker_pb2 as pb
from tenant_worker._records import (
    Author,
    ChangeRecord,
    DeleteResult,
    IdentityRecord,
    MemberRecord,
    ObjectRecord,
    PreferencesRecord,
    RevocationRecord,
    SpaceObjectRecord,
    SpaceRecord,
)
from tenant_worker.files import ByteRange, FileRecord, LinkingObject
from tenant_worker.storage._json import dumps


def timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def delete_message(r: DeleteResult) -> pb.DeleteObjectResponse:
    """A delete's answer, of a personal object or of one in a space."""
    return pb.DeleteObjectResponse(
        collection=r.collection, id=r.id, version=r.version, replayed=r.replayed
    )


def object_message(
    r: ObjectRecord, linked: Mapping[str, FileRecord] | None = None, space: str | None = None
) -> pb.StoredObject:
    """The object; with ``linked`` (the files an answer's objects name, by id), the files
    its version names that still exist where it may name them (its owner's, or ``space``'s)."""
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
    msg.file_ids.extend(r.files)
    if r.files and linked is not None:
        for file_id in r.files:
            found = linked.get(file_id)
            if found is not None and found.space == space:
                msg.files.append(file_message(found))
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


def author_message(a: Author) -> pb.Author:
    return pb.Author(member=a.member, name=a.name)


def member_message(m: MemberRecord) -> pb.Member:
    return pb.Member(
        member=m.member, name=m.name, role=m.role, joined_at=timestamp(m.joined_at), you=m.you
    )


def space_message(s: SpaceRecord) -> pb.Space:
    return pb.Space(
        id=s.id,
        name=s.name,
        kind=s.kind,
        role=s.role,
        objects=s.objects,
        bytes=s.bytes,
        created_at=timestamp(s.created_at),
        members=s.members,
        last_change=s.last_change,
    )


def space_object_message(
    o: SpaceObjectRecord, linked: Mapping[str, FileRecord] | None = None
) -> pb.SpaceObject:
    return pb.SpaceObject(
        space=o.space,
        object=object_message(o.object, linked, o.space),
        created_by=author_message(o.created_by),
        updated_by=author_message(o.updated_by),
        space_name=o.space_name,
    )


def change_message(c: ChangeRecord) -> pb.SpaceChange:
    return pb.SpaceChange(
        seq=c.seq,
        collection=c.collection,
        id=c.id,
        version=c.version,
        action=c.action,
        author=author_message(c.author),
        at=timestamp(c.at),
    )


def file_message(r: FileRecord) -> pb.FileInfo:
    msg = pb.FileInfo(
        id=r.id,
        name=r.name,
        declared_type=r.declared_type,
        sniffed_type=r.sniffed_type or "",
        size_bytes=r.size_bytes,
        sha256=r.sha256 or "",
        version=r.version,
        created_at=timestamp(r.created_at),
        updated_at=timestamp(r.updated_at),
        correlation_id=r.correlation_id,
        space=r.space or "",
    )
    if r.expires_at is not None:
        msg.expires_at.CopyFrom(timestamp(r.expires_at))
    if r.created_by is not None:
        msg.created_by.CopyFrom(author_message(r.created_by))
    if r.updated_by is not None:
        msg.updated_by.CopyFrom(author_message(r.updated_by))
    return msg


def linked_file_message(
    r: FileRecord, linked_from: Sequence[LinkingObject], more: bool
) -> pb.FileInfo:
    """A file with the objects that name it (``GetFile``)."""
    msg = file_message(r)
    msg.linked_from.extend(
        pb.LinkingObject(collection=o.collection, id=o.id, space=o.space or "") for o in linked_from
    )
    msg.more_linked_from = more
    return msg


def byte_range(request: pb.DownloadFileRequest) -> ByteRange | None:
    """The range a download asks for (None: the whole file)."""
    if request.suffix > 0:
        return ByteRange(suffix=request.suffix)
    if not request.has_range:
        return None
    return ByteRange(start=request.start, end=None if request.end < 0 else request.end)
