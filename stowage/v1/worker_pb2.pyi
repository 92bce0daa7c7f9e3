import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ResolveUserRequest(_message.Message):
    __slots__ = ("issuer", "subject")
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    issuer: str
    subject: str
    def __init__(self, issuer: _Optional[str] = ..., subject: _Optional[str] = ...) -> None: ...

class ResolveUserResponse(_message.Message):
    __slots__ = ("user_id", "created")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    created: bool
    def __init__(self, user_id: _Optional[str] = ..., created: _Optional[bool] = ...) -> None: ...

class StoredObject(_message.Message):
    __slots__ = ("collection", "id", "data_json", "schema_version", "version", "created_at", "updated_at", "expires_at", "correlation_id", "size_bytes")
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
    def __init__(self, collection: _Optional[str] = ..., id: _Optional[str] = ..., data_json: _Optional[bytes] = ..., schema_version: _Optional[int] = ..., version: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., correlation_id: _Optional[str] = ..., size_bytes: _Optional[int] = ...) -> None: ...

class PutObjectRequest(_message.Message):
    __slots__ = ("collection", "id", "data_json", "expected_version", "idempotency_key", "ttl_seconds")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    DATA_JSON_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    id: str
    data_json: bytes
    expected_version: int
    idempotency_key: str
    ttl_seconds: int
    def __init__(self, collection: _Optional[str] = ..., id: _Optional[str] = ..., data_json: _Optional[bytes] = ..., expected_version: _Optional[int] = ..., idempotency_key: _Optional[str] = ..., ttl_seconds: _Optional[int] = ...) -> None: ...

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
    __slots__ = ("user_id", "identity", "preferences", "object")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    PREFERENCES_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    identity: IdentityLink
    preferences: Preferences
    object: StoredObject
    def __init__(self, user_id: _Optional[str] = ..., identity: _Optional[_Union[IdentityLink, _Mapping]] = ..., preferences: _Optional[_Union[Preferences, _Mapping]] = ..., object: _Optional[_Union[StoredObject, _Mapping]] = ...) -> None: ...

class EraseUserDataRequest(_message.Message):
    __slots__ = ("confirm",)
    CONFIRM_FIELD_NUMBER: _ClassVar[int]
    confirm: bool
    def __init__(self, confirm: _Optional[bool] = ...) -> None: ...

class EraseUserDataResponse(_message.Message):
    __slots__ = ("objects_deleted", "preferences_deleted", "identities_deleted")
    OBJECTS_DELETED_FIELD_NUMBER: _ClassVar[int]
    PREFERENCES_DELETED_FIELD_NUMBER: _ClassVar[int]
    IDENTITIES_DELETED_FIELD_NUMBER: _ClassVar[int]
    objects_deleted: int
    preferences_deleted: bool
    identities_deleted: int
    def __init__(self, objects_deleted: _Optional[int] = ..., preferences_deleted: _Optional[bool] = ..., identities_deleted: _Optional[int] = ...) -> None: ...

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
    __slots__ = ("objects", "bytes", "collections", "max_objects", "max_bytes", "max_object_bytes")
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    MAX_OBJECTS_FIELD_NUMBER: _ClassVar[int]
    MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_OBJECT_BYTES_FIELD_NUMBER: _ClassVar[int]
    objects: int
    bytes: int
    collections: _containers.RepeatedCompositeFieldContainer[CollectionUsage]
    max_objects: int
    max_bytes: int
    max_object_bytes: int
    def __init__(self, objects: _Optional[int] = ..., bytes: _Optional[int] = ..., collections: _Optional[_Iterable[_Union[CollectionUsage, _Mapping]]] = ..., max_objects: _Optional[int] = ..., max_bytes: _Optional[int] = ..., max_object_bytes: _Optional[int] = ...) -> None: ...

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
