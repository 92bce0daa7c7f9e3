import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CallFrames(_message.Message):
    __slots__ = ("frames",)
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedCompositeFieldContainer[CallFrame]
    def __init__(self, frames: _Optional[_Iterable[_Union[CallFrame, _Mapping]]] = ...) -> None: ...

class ReplyFrames(_message.Message):
    __slots__ = ("frames",)
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedCompositeFieldContainer[ReplyFrame]
    def __init__(self, frames: _Optional[_Iterable[_Union[ReplyFrame, _Mapping]]] = ...) -> None: ...

class MetadataEntry(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: bytes
    def __init__(self, key: _Optional[str] = ..., value: _Optional[bytes] = ...) -> None: ...

class CallFrame(_message.Message):
    __slots__ = ("id", "method", "request", "metadata", "timeout_ms", "cancel")
    ID_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    id: int
    method: str
    request: bytes
    metadata: _containers.RepeatedCompositeFieldContainer[MetadataEntry]
    timeout_ms: int
    cancel: bool
    def __init__(self, id: _Optional[int] = ..., method: _Optional[str] = ..., request: _Optional[bytes] = ..., metadata: _Optional[_Iterable[_Union[MetadataEntry, _Mapping]]] = ..., timeout_ms: _Optional[int] = ..., cancel: _Optional[bool] = ...) -> None: ...

class ReplyFrame(_message.Message):
    __slots__ = ("id", "code", "details", "response", "trailing_metadata")
    ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    TRAILING_METADATA_FIELD_NUMBER: _ClassVar[int]
    id: int
    code: int
    details: str
    response: bytes
    trailing_metadata: _containers.RepeatedCompositeFieldContainer[MetadataEntry]
    def __init__(self, id: _Optional[int] = ..., code: _Optional[int] = ..., details: _Optional[str] = ..., response: _Optional[bytes] = ..., trailing_metadata: _Optional[_Iterable[_Union[MetadataEntry, _Mapping]]] = ...) -> None: ...

class Claims(_message.Message):
    __slots__ = ("name", "email", "org")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    ORG_FIELD_NUMBER: _ClassVar[int]
    name: str
    email: str
    org: str
    def __init__(self, name: _Optional[str] = ..., email: _Optional[str] = ..., org: _Optional[str] = ...) -> None: ...

class ResolveUserRequest(_message.Message):
    __slots__ = ("issuer", "subject", "claims")
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    CLAIMS_FIELD_NUMBER: _ClassVar[int]
    issuer: str
    subject: str
    claims: Claims
    def __init__(self, issuer: _Optional[str] = ..., subject: _Optional[str] = ..., claims: _Optional[_Union[Claims, _Mapping]] = ...) -> None: ...

class ResolveUserResponse(_message.Message):
    __slots__ = ("user_id", "created")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    created: bool
    def __init__(self, user_id: _Optional[str] = ..., created: _Optional[bool] = ...) -> None: ...

class StoredObject(_message.Message):
    __slots__ = ("collection", "id", "data_json", "schema_version", "version", "created_at", "updated_at", "expires_at", "correlation_id", "size_bytes", "file_ids", "files")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    DATA_JSON_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    FILE_IDS_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    collection: str
    id: str
    data_json: bytes
    schema_version: int
    version: int
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    correlation_id: str
    size_bytes: int
    file_ids: _containers.RepeatedScalarFieldContainer[str]
    files: _containers.RepeatedCompositeFieldContainer[FileInfo]
    def __init__(self, collection: _Optional[str] = ..., id: _Optional[str] = ..., data_json: _Optional[bytes] = ..., schema_version: _Optional[int] = ..., version: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., correlation_id: _Optional[str] = ..., size_bytes: _Optional[int] = ..., file_ids: _Optional[_Iterable[str]] = ..., files: _Optional[_Iterable[_Union[FileInfo, _Mapping]]] = ...) -> None: ...

class PutObjectRequest(_message.Message):
    __slots__ = ("collection", "id", "data_json", "expected_version", "idempotency_key", "ttl_seconds", "files")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    DATA_JSON_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    collection: str
    id: str
    data_json: bytes
    expected_version: int
    idempotency_key: str
    ttl_seconds: int
    files: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, collection: _Optional[str] = ..., id: _Optional[str] = ..., data_json: _Optional[bytes] = ..., expected_version: _Optional[int] = ..., idempotency_key: _Optional[str] = ..., ttl_seconds: _Optional[int] = ..., files: _Optional[_Iterable[str]] = ...) -> None: ...

class PutObjectResponse(_message.Message):
    __slots__ = ("object", "created", "replayed")
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    object: StoredObject
    created: bool
    replayed: bool
    def __init__(self, object: _Optional[_Union[StoredObject, _Mapping]] = ..., created: _Optional[bool] = ..., replayed: _Optional[bool] = ...) -> None: ...

class GetObjectRequest(_message.Message):
    __slots__ = ("collection", "id")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    collection: str
    id: str
    def __init__(self, collection: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class GetObjectResponse(_message.Message):
    __slots__ = ("object",)
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    object: StoredObject
    def __init__(self, object: _Optional[_Union[StoredObject, _Mapping]] = ...) -> None: ...

class ListObjectsRequest(_message.Message):
    __slots__ = ("collection", "page_size", "cursor")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    collection: str
    page_size: int
    cursor: str
    def __init__(self, collection: _Optional[str] = ..., page_size: _Optional[int] = ..., cursor: _Optional[str] = ...) -> None: ...

class ListObjectsResponse(_message.Message):
    __slots__ = ("objects", "next_cursor")
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    objects: _containers.RepeatedCompositeFieldContainer[StoredObject]
    next_cursor: str
    def __init__(self, objects: _Optional[_Iterable[_Union[StoredObject, _Mapping]]] = ..., next_cursor: _Optional[str] = ...) -> None: ...

class DeleteObjectRequest(_message.Message):
    __slots__ = ("collection", "id", "expected_version", "idempotency_key")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    collection: str
    id: str
    expected_version: int
    idempotency_key: str
    def __init__(self, collection: _Optional[str] = ..., id: _Optional[str] = ..., expected_version: _Optional[int] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class DeleteObjectResponse(_message.Message):
    __slots__ = ("collection", "id", "version", "replayed")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    collection: str
    id: str
    version: int
    replayed: bool
    def __init__(self, collection: _Optional[str] = ..., id: _Optional[str] = ..., version: _Optional[int] = ..., replayed: _Optional[bool] = ...) -> None: ...

class GetPreferencesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Preferences(_message.Message):
    __slots__ = ("data_json", "version", "updated_at")
    DATA_JSON_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    data_json: bytes
    version: int
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, data_json: _Optional[bytes] = ..., version: _Optional[int] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class UpdatePreferencesRequest(_message.Message):
    __slots__ = ("merge_patch_json", "expected_version", "idempotency_key")
    MERGE_PATCH_JSON_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    merge_patch_json: bytes
    expected_version: int
    idempotency_key: str
    def __init__(self, merge_patch_json: _Optional[bytes] = ..., expected_version: _Optional[int] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class ExportUserDataRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class IdentityLink(_message.Message):
    __slots__ = ("issuer", "subject", "created_at")
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    issuer: str
    subject: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, issuer: _Optional[str] = ..., subject: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ExportRecord(_message.Message):
    __slots__ = ("user_id", "identity", "preferences", "object", "space_object", "file")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    PREFERENCES_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    SPACE_OBJECT_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    identity: IdentityLink
    preferences: Preferences
    object: StoredObject
    space_object: SpaceObject
    file: FileInfo
    def __init__(self, user_id: _Optional[str] = ..., identity: _Optional[_Union[IdentityLink, _Mapping]] = ..., preferences: _Optional[_Union[Preferences, _Mapping]] = ..., object: _Optional[_Union[StoredObject, _Mapping]] = ..., space_object: _Optional[_Union[SpaceObject, _Mapping]] = ..., file: _Optional[_Union[FileInfo, _Mapping]] = ...) -> None: ...

class EraseUserDataRequest(_message.Message):
    __slots__ = ("confirm",)
    CONFIRM_FIELD_NUMBER: _ClassVar[int]
    confirm: bool
    def __init__(self, confirm: _Optional[bool] = ...) -> None: ...

class EraseUserDataResponse(_message.Message):
    __slots__ = ("objects_deleted", "preferences_deleted", "identities_deleted", "files_deleted")
    OBJECTS_DELETED_FIELD_NUMBER: _ClassVar[int]
    PREFERENCES_DELETED_FIELD_NUMBER: _ClassVar[int]
    IDENTITIES_DELETED_FIELD_NUMBER: _ClassVar[int]
    FILES_DELETED_FIELD_NUMBER: _ClassVar[int]
    objects_deleted: int
    preferences_deleted: bool
    identities_deleted: int
    files_deleted: int
    def __init__(self, objects_deleted: _Optional[int] = ..., preferences_deleted: _Optional[bool] = ..., identities_deleted: _Optional[int] = ..., files_deleted: _Optional[int] = ...) -> None: ...

class PurgeExpiredRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class PurgeExpiredResponse(_message.Message):
    __slots__ = ("purged", "more")
    PURGED_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    purged: int
    more: bool
    def __init__(self, purged: _Optional[int] = ..., more: _Optional[bool] = ...) -> None: ...

class UpgradeObjectsRequest(_message.Message):
    __slots__ = ("collection", "limit")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    collection: str
    limit: int
    def __init__(self, collection: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class UpgradeObjectsResponse(_message.Message):
    __slots__ = ("upgraded", "more")
    UPGRADED_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    upgraded: int
    more: bool
    def __init__(self, upgraded: _Optional[int] = ..., more: _Optional[bool] = ...) -> None: ...

class GetUsageRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CollectionUsage(_message.Message):
    __slots__ = ("collection", "objects", "bytes")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    collection: str
    objects: int
    bytes: int
    def __init__(self, collection: _Optional[str] = ..., objects: _Optional[int] = ..., bytes: _Optional[int] = ...) -> None: ...

class UsageReport(_message.Message):
    __slots__ = ("objects", "bytes", "collections", "max_objects", "max_bytes", "max_object_bytes", "files", "file_bytes", "max_file_bytes")
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    MAX_OBJECTS_FIELD_NUMBER: _ClassVar[int]
    MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_OBJECT_BYTES_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    FILE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_FILE_BYTES_FIELD_NUMBER: _ClassVar[int]
    objects: int
    bytes: int
    collections: _containers.RepeatedCompositeFieldContainer[CollectionUsage]
    max_objects: int
    max_bytes: int
    max_object_bytes: int
    files: int
    file_bytes: int
    max_file_bytes: int
    def __init__(self, objects: _Optional[int] = ..., bytes: _Optional[int] = ..., collections: _Optional[_Iterable[_Union[CollectionUsage, _Mapping]]] = ..., max_objects: _Optional[int] = ..., max_bytes: _Optional[int] = ..., max_object_bytes: _Optional[int] = ..., files: _Optional[int] = ..., file_bytes: _Optional[int] = ..., max_file_bytes: _Optional[int] = ...) -> None: ...

class RevokeAccessRequest(_message.Message):
    __slots__ = ("issuer", "subject", "all_identities", "revoked_before", "requested_by", "reason")
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    ALL_IDENTITIES_FIELD_NUMBER: _ClassVar[int]
    REVOKED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    issuer: str
    subject: str
    all_identities: bool
    revoked_before: _timestamp_pb2.Timestamp
    requested_by: str
    reason: str
    def __init__(self, issuer: _Optional[str] = ..., subject: _Optional[str] = ..., all_identities: _Optional[bool] = ..., revoked_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., requested_by: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class Revocation(_message.Message):
    __slots__ = ("id", "identity", "all_identities", "revoked_before", "recorded_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    ALL_IDENTITIES_FIELD_NUMBER: _ClassVar[int]
    REVOKED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    id: int
    identity: str
    all_identities: bool
    revoked_before: _timestamp_pb2.Timestamp
    recorded_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[int] = ..., identity: _Optional[str] = ..., all_identities: _Optional[bool] = ..., revoked_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., recorded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListRevocationsRequest(_message.Message):
    __slots__ = ("after_id", "limit")
    AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    after_id: int
    limit: int
    def __init__(self, after_id: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ListRevocationsResponse(_message.Message):
    __slots__ = ("revocations", "more")
    REVOCATIONS_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    revocations: _containers.RepeatedCompositeFieldContainer[Revocation]
    more: bool
    def __init__(self, revocations: _Optional[_Iterable[_Union[Revocation, _Mapping]]] = ..., more: _Optional[bool] = ...) -> None: ...

class Member(_message.Message):
    __slots__ = ("member", "name", "role", "joined_at", "you")
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    JOINED_AT_FIELD_NUMBER: _ClassVar[int]
    YOU_FIELD_NUMBER: _ClassVar[int]
    member: str
    name: str
    role: str
    joined_at: _timestamp_pb2.Timestamp
    you: bool
    def __init__(self, member: _Optional[str] = ..., name: _Optional[str] = ..., role: _Optional[str] = ..., joined_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., you: _Optional[bool] = ...) -> None: ...

class Space(_message.Message):
    __slots__ = ("id", "name", "kind", "role", "objects", "bytes", "created_at", "members", "last_change")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    LAST_CHANGE_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    kind: str
    role: str
    objects: int
    bytes: int
    created_at: _timestamp_pb2.Timestamp
    members: int
    last_change: int
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., kind: _Optional[str] = ..., role: _Optional[str] = ..., objects: _Optional[int] = ..., bytes: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., members: _Optional[int] = ..., last_change: _Optional[int] = ...) -> None: ...

class SpaceDetail(_message.Message):
    __slots__ = ("space", "members", "pending_invites")
    SPACE_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    PENDING_INVITES_FIELD_NUMBER: _ClassVar[int]
    space: Space
    members: _containers.RepeatedCompositeFieldContainer[Member]
    pending_invites: int
    def __init__(self, space: _Optional[_Union[Space, _Mapping]] = ..., members: _Optional[_Iterable[_Union[Member, _Mapping]]] = ..., pending_invites: _Optional[int] = ...) -> None: ...

class Author(_message.Message):
    __slots__ = ("member", "name")
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    member: str
    name: str
    def __init__(self, member: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class SpaceObject(_message.Message):
    __slots__ = ("space", "object", "created_by", "updated_by", "space_name")
    SPACE_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BY_FIELD_NUMBER: _ClassVar[int]
    SPACE_NAME_FIELD_NUMBER: _ClassVar[int]
    space: str
    object: StoredObject
    created_by: Author
    updated_by: Author
    space_name: str
    def __init__(self, space: _Optional[str] = ..., object: _Optional[_Union[StoredObject, _Mapping]] = ..., created_by: _Optional[_Union[Author, _Mapping]] = ..., updated_by: _Optional[_Union[Author, _Mapping]] = ..., space_name: _Optional[str] = ...) -> None: ...

class CreateSpaceRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListSpacesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSpacesResponse(_message.Message):
    __slots__ = ("spaces",)
    SPACES_FIELD_NUMBER: _ClassVar[int]
    spaces: _containers.RepeatedCompositeFieldContainer[Space]
    def __init__(self, spaces: _Optional[_Iterable[_Union[Space, _Mapping]]] = ...) -> None: ...

class GetSpaceRequest(_message.Message):
    __slots__ = ("space",)
    SPACE_FIELD_NUMBER: _ClassVar[int]
    space: str
    def __init__(self, space: _Optional[str] = ...) -> None: ...

class InviteMemberRequest(_message.Message):
    __slots__ = ("space", "user", "email", "role")
    SPACE_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    space: str
    user: str
    email: str
    role: str
    def __init__(self, space: _Optional[str] = ..., user: _Optional[str] = ..., email: _Optional[str] = ..., role: _Optional[str] = ...) -> None: ...

class InviteMemberResponse(_message.Message):
    __slots__ = ("member", "pending")
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    member: Member
    pending: bool
    def __init__(self, member: _Optional[_Union[Member, _Mapping]] = ..., pending: _Optional[bool] = ...) -> None: ...

class SetMemberRoleRequest(_message.Message):
    __slots__ = ("space", "member", "role")
    SPACE_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    space: str
    member: str
    role: str
    def __init__(self, space: _Optional[str] = ..., member: _Optional[str] = ..., role: _Optional[str] = ...) -> None: ...

class RemoveMemberRequest(_message.Message):
    __slots__ = ("space", "member")
    SPACE_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    space: str
    member: str
    def __init__(self, space: _Optional[str] = ..., member: _Optional[str] = ...) -> None: ...

class RemoveMemberResponse(_message.Message):
    __slots__ = ("member",)
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    member: str
    def __init__(self, member: _Optional[str] = ...) -> None: ...

class LeaveSpaceRequest(_message.Message):
    __slots__ = ("space",)
    SPACE_FIELD_NUMBER: _ClassVar[int]
    space: str
    def __init__(self, space: _Optional[str] = ...) -> None: ...

class LeaveSpaceResponse(_message.Message):
    __slots__ = ("space_deleted",)
    SPACE_DELETED_FIELD_NUMBER: _ClassVar[int]
    space_deleted: bool
    def __init__(self, space_deleted: _Optional[bool] = ...) -> None: ...

class PutSpaceObjectRequest(_message.Message):
    __slots__ = ("space", "collection", "id", "data_json", "expected_version", "idempotency_key", "ttl_seconds", "files")
    SPACE_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    DATA_JSON_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    space: str
    collection: str
    id: str
    data_json: bytes
    expected_version: int
    idempotency_key: str
    ttl_seconds: int
    files: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, space: _Optional[str] = ..., collection: _Optional[str] = ..., id: _Optional[str] = ..., data_json: _Optional[bytes] = ..., expected_version: _Optional[int] = ..., idempotency_key: _Optional[str] = ..., ttl_seconds: _Optional[int] = ..., files: _Optional[_Iterable[str]] = ...) -> None: ...

class PutSpaceObjectResponse(_message.Message):
    __slots__ = ("object", "created", "replayed")
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    object: SpaceObject
    created: bool
    replayed: bool
    def __init__(self, object: _Optional[_Union[SpaceObject, _Mapping]] = ..., created: _Optional[bool] = ..., replayed: _Optional[bool] = ...) -> None: ...

class GetSpaceObjectRequest(_message.Message):
    __slots__ = ("space", "collection", "id")
    SPACE_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    space: str
    collection: str
    id: str
    def __init__(self, space: _Optional[str] = ..., collection: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class ListSpaceObjectsRequest(_message.Message):
    __slots__ = ("space", "collection", "page_size", "cursor")
    SPACE_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    space: str
    collection: str
    page_size: int
    cursor: str
    def __init__(self, space: _Optional[str] = ..., collection: _Optional[str] = ..., page_size: _Optional[int] = ..., cursor: _Optional[str] = ...) -> None: ...

class ListSpaceObjectsResponse(_message.Message):
    __slots__ = ("objects", "next_cursor")
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    objects: _containers.RepeatedCompositeFieldContainer[SpaceObject]
    next_cursor: str
    def __init__(self, objects: _Optional[_Iterable[_Union[SpaceObject, _Mapping]]] = ..., next_cursor: _Optional[str] = ...) -> None: ...

class DeleteSpaceObjectRequest(_message.Message):
    __slots__ = ("space", "collection", "id", "expected_version", "idempotency_key")
    SPACE_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    space: str
    collection: str
    id: str
    expected_version: int
    idempotency_key: str
    def __init__(self, space: _Optional[str] = ..., collection: _Optional[str] = ..., id: _Optional[str] = ..., expected_version: _Optional[int] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class SpaceChange(_message.Message):
    __slots__ = ("seq", "collection", "id", "version", "action", "author", "at")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    seq: int
    collection: str
    id: str
    version: int
    action: str
    author: Author
    at: _timestamp_pb2.Timestamp
    def __init__(self, seq: _Optional[int] = ..., collection: _Optional[str] = ..., id: _Optional[str] = ..., version: _Optional[int] = ..., action: _Optional[str] = ..., author: _Optional[_Union[Author, _Mapping]] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListSpaceChangesRequest(_message.Message):
    __slots__ = ("space", "cursor", "limit")
    SPACE_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    space: str
    cursor: str
    limit: int
    def __init__(self, space: _Optional[str] = ..., cursor: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListSpaceChangesResponse(_message.Message):
    __slots__ = ("changes", "next_cursor", "more")
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[SpaceChange]
    next_cursor: str
    more: bool
    def __init__(self, changes: _Optional[_Iterable[_Union[SpaceChange, _Mapping]]] = ..., next_cursor: _Optional[str] = ..., more: _Optional[bool] = ...) -> None: ...

class ListTenantSpacesRequest(_message.Message):
    __slots__ = ("after_id", "limit")
    AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    after_id: str
    limit: int
    def __init__(self, after_id: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class TenantSpace(_message.Message):
    __slots__ = ("space", "members")
    SPACE_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    space: Space
    members: _containers.RepeatedCompositeFieldContainer[Member]
    def __init__(self, space: _Optional[_Union[Space, _Mapping]] = ..., members: _Optional[_Iterable[_Union[Member, _Mapping]]] = ...) -> None: ...

class ListTenantSpacesResponse(_message.Message):
    __slots__ = ("spaces", "more")
    SPACES_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    spaces: _containers.RepeatedCompositeFieldContainer[TenantSpace]
    more: bool
    def __init__(self, spaces: _Optional[_Iterable[_Union[TenantSpace, _Mapping]]] = ..., more: _Optional[bool] = ...) -> None: ...

class FileInfo(_message.Message):
    __slots__ = ("id", "name", "declared_type", "sniffed_type", "size_bytes", "sha256", "version", "created_at", "updated_at", "expires_at", "correlation_id", "space", "created_by", "updated_by", "linked_from", "more_linked_from")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DECLARED_TYPE_FIELD_NUMBER: _ClassVar[int]
    SNIFFED_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    SPACE_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BY_FIELD_NUMBER: _ClassVar[int]
    LINKED_FROM_FIELD_NUMBER: _ClassVar[int]
    MORE_LINKED_FROM_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    declared_type: str
    sniffed_type: str
    size_bytes: int
    sha256: str
    version: int
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    correlation_id: str
    space: str
    created_by: Author
    updated_by: Author
    linked_from: _containers.RepeatedCompositeFieldContainer[LinkingObject]
    more_linked_from: bool
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., declared_type: _Optional[str] = ..., sniffed_type: _Optional[str] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ..., version: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., correlation_id: _Optional[str] = ..., space: _Optional[str] = ..., created_by: _Optional[_Union[Author, _Mapping]] = ..., updated_by: _Optional[_Union[Author, _Mapping]] = ..., linked_from: _Optional[_Iterable[_Union[LinkingObject, _Mapping]]] = ..., more_linked_from: _Optional[bool] = ...) -> None: ...

class LinkingObject(_message.Message):
    __slots__ = ("collection", "id", "space")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    SPACE_FIELD_NUMBER: _ClassVar[int]
    collection: str
    id: str
    space: str
    def __init__(self, collection: _Optional[str] = ..., id: _Optional[str] = ..., space: _Optional[str] = ...) -> None: ...

class CreateFileRequest(_message.Message):
    __slots__ = ("name", "content_type", "size", "id", "ttl_seconds", "space")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SPACE_FIELD_NUMBER: _ClassVar[int]
    name: str
    content_type: str
    size: int
    id: str
    ttl_seconds: int
    space: str
    def __init__(self, name: _Optional[str] = ..., content_type: _Optional[str] = ..., size: _Optional[int] = ..., id: _Optional[str] = ..., ttl_seconds: _Optional[int] = ..., space: _Optional[str] = ...) -> None: ...

class GetFileRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListFilesRequest(_message.Message):
    __slots__ = ("page_size", "cursor", "space")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    SPACE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    cursor: str
    space: str
    def __init__(self, page_size: _Optional[int] = ..., cursor: _Optional[str] = ..., space: _Optional[str] = ...) -> None: ...

class ListFilesResponse(_message.Message):
    __slots__ = ("files", "next_cursor")
    FILES_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    files: _containers.RepeatedCompositeFieldContainer[FileInfo]
    next_cursor: str
    def __init__(self, files: _Optional[_Iterable[_Union[FileInfo, _Mapping]]] = ..., next_cursor: _Optional[str] = ...) -> None: ...

class UploadFileHeader(_message.Message):
    __slots__ = ("id", "size", "sha256")
    ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    id: str
    size: int
    sha256: str
    def __init__(self, id: _Optional[str] = ..., size: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class UploadFileMessage(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: UploadFileHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[UploadFileHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class DownloadFileRequest(_message.Message):
    __slots__ = ("id", "has_range", "start", "end", "suffix")
    ID_FIELD_NUMBER: _ClassVar[int]
    HAS_RANGE_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    SUFFIX_FIELD_NUMBER: _ClassVar[int]
    id: str
    has_range: bool
    start: int
    end: int
    suffix: int
    def __init__(self, id: _Optional[str] = ..., has_range: _Optional[bool] = ..., start: _Optional[int] = ..., end: _Optional[int] = ..., suffix: _Optional[int] = ...) -> None: ...

class DownloadHead(_message.Message):
    __slots__ = ("file", "start", "length", "satisfiable")
    FILE_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    SATISFIABLE_FIELD_NUMBER: _ClassVar[int]
    file: FileInfo
    start: int
    length: int
    satisfiable: bool
    def __init__(self, file: _Optional[_Union[FileInfo, _Mapping]] = ..., start: _Optional[int] = ..., length: _Optional[int] = ..., satisfiable: _Optional[bool] = ...) -> None: ...

class DownloadFileMessage(_message.Message):
    __slots__ = ("head", "data")
    HEAD_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    head: DownloadHead
    data: bytes
    def __init__(self, head: _Optional[_Union[DownloadHead, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class ExportFilesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SkippedFile(_message.Message):
    __slots__ = ("file", "reason")
    FILE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    file: FileInfo
    reason: str
    def __init__(self, file: _Optional[_Union[FileInfo, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class ExportFileMessage(_message.Message):
    __slots__ = ("file", "data", "skipped")
    FILE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    file: FileInfo
    data: bytes
    skipped: SkippedFile
    def __init__(self, file: _Optional[_Union[FileInfo, _Mapping]] = ..., data: _Optional[bytes] = ..., skipped: _Optional[_Union[SkippedFile, _Mapping]] = ...) -> None: ...
