"""The tools' wire definitions as data: one row per tool. No I/O here.

A row is the whole declaration of a tool in the gateway: its name, wording,
schemas, hints and the operation (:mod:`gateway.surface._operations`) that carries it
out, so a tool without an operation cannot be declared.

:data:`OBJECT_TOOLS` are the four tools every collection gets (the built-in
``items`` and each collection declared with a JSON Schema); their rows are
templates that :mod:`gateway.surface._tools` fills in per collection. :data:`BUILTIN_TOOLS`
are the tools every tenant gets once (preferences, usage, export, erasure,
revocation), complete as they stand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from gateway.surface import _operations as op
from gateway.surface._operations import Operation
from stowage.values import MAX_TTL_SECONDS, MAX_VERSION

NAME = {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,62}$"}
_ID = {"type": "string", "minLength": 1, "maxLength": 200}
_VERSION = {
    "type": "integer",
    "minimum": 0,
    "maximum": MAX_VERSION,
    "description": "Version the object must currently have (from an earlier result); "
    "0 means it must not exist yet. Omit to write unconditionally.",
}
_IDEMPOTENCY = {
    "type": "string",
    "maxLength": 200,
    "description": "A key unique to this intended change; repeating a call with the same "
    "key returns the first result and writes nothing again.",
}
_TIMESTAMP = {"type": "string", "format": "date-time"}
_CONFIRM = {
    "properties": {"confirm": {"type": "boolean", "const": True}},
    "required": ["confirm"],
}


def nullable(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` or null, as ``anyOf`` branches with one ``type`` each.

    A ``type`` array (``["string", "null"]``) is valid JSON Schema but less
    portable: clients that map tool schemas onto a single-``type`` dialect (the
    MCP Inspector's ``--strict`` check warns about them) may drop the constraint.
    """
    return {"anyOf": [dict(schema), {"type": "null"}]}


_LINK_PROPERTIES: dict[str, Any] = {
    "url": {"type": "string", "format": "uri"},
    "method": {"type": "string", "enum": ["GET", "PUT"]},
    "expires_at": _TIMESTAMP,
}
_LINK = {
    "type": "object",
    "properties": _LINK_PROPERTIES,
    "required": ["url", "method", "expires_at"],
}
_LINKED_FILE_OUT = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "content_type": {"type": "string"},
        "size": {"type": "integer", "minimum": 0},
        "status": {"type": "string", "enum": ["awaiting_upload", "ready"]},
        "download": _LINK,
    },
    "required": ["id", "name", "content_type", "size", "status"],
}


def object_schema(data: Mapping[str, Any]) -> dict[str, Any]:
    """A stored object whose ``data`` follows ``data``, as tool results carry it."""
    return {
        "type": "object",
        "properties": {
            "collection": {"type": "string"},
            "id": {"type": "string"},
            "version": {"type": "integer"},
            "schema_version": {"type": "integer"},
            "data": dict(data),
            "created_at": _TIMESTAMP,
            "updated_at": _TIMESTAMP,
            "expires_at": nullable(_TIMESTAMP),
            "files": {
                "type": "array",
                "items": _LINKED_FILE_OUT,
                "description": "The files this version names that still exist (a file "
                "deleted or expired since drops out), each with a short-lived download link "
                "once uploaded.",
            },
        },
        "required": ["collection", "id", "version", "schema_version", "data"],
    }


#: An object stored before a limit applied whose data can no longer travel as JSON
#: (see :mod:`stowage.values`): its stored text instead, and why.
UNREADABLE_OBJECT = {
    "type": "object",
    "properties": {
        "collection": {"type": "string"},
        "id": {"type": "string"},
        "version": {"type": "integer"},
        "problem": {"type": "string"},
        "data_json": {
            "type": "string",
            "description": "The object's data exactly as stored, as JSON text.",
        },
    },
    "required": ["collection", "id", "version", "problem", "data_json"],
}


class Slot(Enum):
    """A place in an object tool's schema that holds a part of its collection."""

    #: The collection's JSON Schema (``{"type": "object"}`` when it has none).
    DATA = "data"
    #: A stored object of the collection (:func:`object_schema` of its data).
    OBJECT = "object"


@dataclass(frozen=True)
class ToolRow:
    """One tool: its name, wording, action and schemas, and the hints clients read.

    In :data:`OBJECT_TOOLS` the name follows the collection's prefix (``notes_``),
    the title and description may name ``{one}``, ``{many}`` and ``{where}``, the
    input's properties follow the ``collection`` argument where there is one, and
    :class:`Slot` markers stand for the collection's parts.
    """

    name: str
    title: str
    description: str
    #: What the tool does at the worker (:mod:`gateway.surface._operations`).
    operation: Operation
    input_schema: Mapping[str, Any]
    output_schema: Mapping[str, Any]
    read_only: bool = False
    destructive: bool = False
    idempotent: bool = False
    #: The caller's internal user id is gone once the tool succeeds (erasure): forget it.
    forgets_user: bool = False


OBJECT_TOOLS = (
    ToolRow(
        "save",
        "Save {one}",
        "Create or replace one object in {where} for the signed-in user. Use when the user "
        "asks to remember, store, or update something. Pass expected_version from an earlier "
        "result to avoid overwriting a newer change; on a conflict the result holds the "
        "current object. Returns its id and new version.",
        op.save,
        {
            "properties": {
                "id": {**_ID, "description": "Omit to create a new object with a fresh id."},
                "data": Slot.DATA,
                "expected_version": _VERSION,
                "idempotency_key": _IDEMPOTENCY,
                "ttl_seconds": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": MAX_TTL_SECONDS,
                    "default": 0,
                    "description": "Delete the object this many seconds from now (at most 100 "
                    "years); 0 keeps it as long as the collection's retention allows.",
                },
            },
            "required": ["data"],
        },
        {
            "type": "object",
            "properties": {
                "object": Slot.OBJECT,
                "created": {"type": "boolean"},
                "replayed": {"type": "boolean"},
            },
            "required": ["object", "created", "replayed"],
        },
    ),
    ToolRow(
        "get",
        "Get {one}",
        "Read one object of the signed-in user from {where} by id. Use when you know the "
        "id (from an earlier result or a widget's state) and need its current content.",
        op.get,
        {"properties": {"id": _ID}, "required": ["id"]},
        {"type": "object", "properties": {"object": Slot.OBJECT}, "required": ["object"]},
        read_only=True,
        idempotent=True,
    ),
    ToolRow(
        "list",
        "List {many}",
        "List the signed-in user's objects in {where}, oldest first, one page at a time. "
        "Use to find what the user has stored; pass next_cursor to get the next page.",
        op.list_page,
        {
            "properties": {
                "page_size": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
                "cursor": {"type": "string"},
            },
        },
        {
            "type": "object",
            "properties": {
                "objects": {"type": "array", "items": Slot.OBJECT},
                "next_cursor": nullable({"type": "string"}),
                "unreadable": {
                    "type": "array",
                    "items": UNREADABLE_OBJECT,
                    "description": "Objects on this page that cannot be returned as JSON "
                    "(my_data_export gives their stored text); absent when there are none.",
                },
            },
            "required": ["objects", "next_cursor"],
        },
        read_only=True,
        idempotent=True,
    ),
    ToolRow(
        "delete",
        "Delete {one}",
        "Delete one object of the signed-in user from {where}. Use only when the user asks "
        "to remove it. Pass expected_version to delete only the version you showed them.",
        op.delete,
        {
            "properties": {
                "id": _ID,
                "expected_version": _VERSION,
                "idempotency_key": _IDEMPOTENCY,
            },
            "required": ["id"],
        },
        {
            "type": "object",
            "properties": {
                "collection": {"type": "string"},
                "id": {"type": "string"},
                "version": {"type": "integer"},
                "replayed": {"type": "boolean"},
            },
            "required": ["collection", "id", "version", "replayed"],
        },
        destructive=True,
        idempotent=True,
    ),
)


_PREFERENCES_OUT = {
    "type": "object",
    "properties": {
        "preferences": {"type": "object"},
        "version": {"type": "integer"},
        "updated_at": nullable(_TIMESTAMP),
    },
    "required": ["preferences", "version"],
}
_COUNT = {"type": "integer", "minimum": 0}
_LIMIT = {
    "type": "integer",
    "minimum": 0,
    "description": "The limit for this user; absent when the tenant sets none.",
}
_USAGE_OUT = {
    "type": "object",
    "properties": {
        "objects": _COUNT,
        "bytes": _COUNT,
        "collections": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "collection": {"type": "string"},
                    "objects": _COUNT,
                    "bytes": _COUNT,
                },
                "required": ["collection", "objects", "bytes"],
            },
        },
        "limits": {
            "type": "object",
            "properties": {
                "max_objects": _LIMIT,
                "max_bytes": _LIMIT,
                "max_object_bytes": {**_COUNT, "description": "The largest single object."},
                "max_file_bytes": {**_COUNT, "description": "The largest single file."},
            },
            "required": ["max_object_bytes"],
        },
        "files": {
            "type": "object",
            "description": "The user's files (counted in objects and bytes too); absent when "
            "the app stores no files.",
            "properties": {"files": _COUNT, "bytes": _COUNT},
            "required": ["files", "bytes"],
        },
    },
    "required": ["objects", "bytes", "collections", "limits"],
}
_EXPORT_OUT = {
    "type": "object",
    "properties": {
        "user_id": {"type": "string"},
        "identities": {"type": "array", "items": {"type": "object"}},
        "preferences": nullable({"type": "object"}),
        "objects": {"type": "array", "items": object_schema({"type": "object"})},
        "unreadable_objects": {
            "type": "array",
            "items": UNREADABLE_OBJECT,
            "description": "Objects whose data cannot travel as JSON, as their stored text.",
        },
        "unreadable_preferences": {
            "type": "object",
            "properties": {"problem": {"type": "string"}, "data_json": {"type": "string"}},
            "required": ["problem", "data_json"],
        },
        "files": {
            "type": "array",
            "description": "The user's files (when the app stores files): metadata, sha256 and "
            "a short-lived download link each.",
            "items": {"type": "object"},
        },
        "archive": {
            "type": "object",
            "description": "A short-lived link (GET) to everything above as one tar archive: "
            "export.json, every file's bytes under files/<id>/<name>, and manifest.json "
            "listing each file streamed with its sha256.",
            "properties": {
                "url": {"type": "string"},
                "method": {"type": "string"},
                "expires_at": {"type": "string"},
            },
            "required": ["url", "method", "expires_at"],
        },
    },
    "required": ["user_id", "identities", "objects"],
}
_ERASE_OUT = {
    "type": "object",
    "properties": {
        "objects_deleted": {"type": "integer"},
        "preferences_deleted": {"type": "boolean"},
        "identities_deleted": {"type": "integer"},
        "files_deleted": {"type": "integer"},
    },
    "required": ["objects_deleted", "preferences_deleted", "identities_deleted"],
}
_REVOKE_OUT = {
    "type": "object",
    "properties": {
        "revoked_before": {
            **_TIMESTAMP,
            "description": "Tokens of sign-ins at or before this time are refused, refreshed "
            "ones included; a new sign-in gets back in.",
        },
        "message": {"type": "string"},
    },
    "required": ["revoked_before", "message"],
}

BUILTIN_TOOLS = (
    ToolRow(
        "preferences_get",
        "Get preferences",
        "Read the signed-in user's preferences (one JSON object). Call before answering in a "
        "way the user may have customised, e.g. tone, units or defaults.",
        op.preferences_get,
        {"properties": {}},
        _PREFERENCES_OUT,
        read_only=True,
        idempotent=True,
    ),
    ToolRow(
        "preferences_update",
        "Update preferences",
        "Change the signed-in user's preferences with a JSON merge patch: keys set to a value "
        "are stored, keys set to null are removed, others are kept. Use when the user states "
        "a lasting preference.",
        op.preferences_update,
        {
            "properties": {
                "patch": {"type": "object", "description": "RFC 7396 JSON merge patch."},
                "expected_version": _VERSION,
                "idempotency_key": _IDEMPOTENCY,
            },
            "required": ["patch"],
        },
        _PREFERENCES_OUT,
        idempotent=True,
    ),
    ToolRow(
        "my_usage_get",
        "Show my storage use",
        "Show how much the signed-in user stores (objects and bytes, per collection) and the "
        "limits that apply to them. Call when a save was refused with quota_exceeded, to tell "
        "the user why and which collections to clean up, or when the user asks how much "
        "space they use.",
        op.usage,
        {"properties": {}},
        _USAGE_OUT,
        read_only=True,
        idempotent=True,
    ),
    ToolRow(
        "my_data_export",
        "Export my data",
        "Export everything stored about the signed-in user: identities, preferences, all "
        "objects and files, with a link to download it all as one archive. Use only when "
        "the user asks for a copy of their data.",
        op.export,
        {"properties": {}},
        _EXPORT_OUT,
        read_only=True,
        idempotent=True,
    ),
    ToolRow(
        "my_data_erase",
        "Erase my data",
        "Permanently delete everything stored about the signed-in user. Use only when the "
        "user explicitly asks to erase all their data, after confirming with them; set "
        "confirm to true. This cannot be undone.",
        op.erase,
        _CONFIRM,
        _ERASE_OUT,
        destructive=True,
        idempotent=True,
        forgets_user=True,
    ),
    ToolRow(
        "my_access_revoke",
        "Revoke my access",
        "Disconnect the signed-in user from this app everywhere: every sign-in they gave it "
        "so far stops working within seconds, this conversation's included, and the app "
        "must be connected again before it can be used. Their stored data is kept (erasing "
        "it is my_data_erase). Use only when the user asks to disconnect, sign out "
        "everywhere or revoke this app's access (e.g. after losing a device), after "
        "confirming with them; set confirm to true.",
        op.revoke_access,
        _CONFIRM,
        _REVOKE_OUT,
        destructive=True,
        idempotent=True,
    ),
)


# --- shared spaces ---------------------------------------------------------------------------

_SPACE = {
    "type": "string",
    "minLength": 1,
    "maxLength": 64,
    "description": "The space's id (from spaces_list or spaces_create).",
}
_MEMBER = {
    "type": "string",
    "minLength": 1,
    "maxLength": 64,
    "description": "A member's handle (members[].member from spaces_get).",
}
_ROLE = {
    "type": "string",
    "enum": ["owner", "editor", "viewer"],
    "description": "owner: manages members; editor: saves and deletes; viewer: reads.",
}
_AUTHOR = {
    "type": "object",
    "properties": {"member": {"type": "string"}, "name": {"type": "string"}},
    "required": ["member", "name"],
}
_SPACE_OUT = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "kind": {"type": "string", "description": "space, or org for an organisation's space"},
        "role": {"type": "string", "description": "The signed-in user's role in it."},
        "members": _COUNT,
        "objects": _COUNT,
        "bytes": _COUNT,
        "created_at": _TIMESTAMP,
        "last_change": {**_COUNT, "description": "The number of its latest change."},
    },
    "required": ["id", "name", "role"],
}
_MEMBER_OUT = {
    "type": "object",
    "properties": {
        "member": {"type": "string"},
        "name": {"type": "string"},
        "role": {"type": "string"},
        "joined_at": _TIMESTAMP,
        "you": {"type": "boolean"},
    },
    "required": ["member", "name", "role"],
}


def _in_space(row: ToolRow, operation: Operation, description: str) -> ToolRow:
    """An object tool of a shared collection: the same row, with the ``space`` argument."""
    schema = dict(row.input_schema)
    schema["properties"] = {"space": _SPACE, **schema["properties"]}
    schema["required"] = ["space", *schema.get("required", [])]
    return ToolRow(
        row.name,
        row.title + " in a space",
        description,
        operation,
        schema,
        row.output_schema,
        read_only=row.read_only,
        destructive=row.destructive,
        idempotent=row.idempotent,
    )


_SAVE, _GET, _LIST, _DELETE = OBJECT_TOOLS
#: The object tools of a collection declared ``shared``: its objects live in spaces.
SPACE_OBJECT_TOOLS = (
    _in_space(
        _SAVE,
        op.space_save,
        "Create or replace {one} in a shared space that the signed-in user is an editor or "
        "owner of; other members see the change. Pass expected_version from an earlier result: "
        "if someone else changed it since, the result is a conflict saying who and when, with "
        "the current object; show the user, then retry with the new version if they still "
        "want the change.",
    ),
    _in_space(
        _GET,
        op.space_object_get,
        "Read {one} of a shared space by id, with who created and last changed it. Use after "
        "spaces_changes reports a change, or when a widget holds the id.",
    ),
    _in_space(
        _LIST,
        op.space_object_list,
        "List {many} in a shared space, one page at a time. Use to show what the space "
        "holds; pass next_cursor for the next page.",
    ),
    _in_space(
        _DELETE,
        op.space_object_delete,
        "Delete {one} from a shared space (editors and owners). Use only when the user asks; "
        "pass expected_version to delete only the version they saw.",
    ),
)

#: The tools to manage spaces, for a tenant with at least one shared collection.
SPACE_TOOLS = (
    ToolRow(
        "spaces_create",
        "Create a space",
        "Create a shared space (a team board, a family list) that the signed-in user owns; "
        "invite others with spaces_invite. Objects of shared collections live in a space.",
        op.space_create,
        {
            "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 200}},
            "required": ["name"],
        },
        {"type": "object", "properties": {"space": _SPACE_OUT}, "required": ["space"]},
    ),
    ToolRow(
        "spaces_list",
        "List my spaces",
        "List the shared spaces the signed-in user is a member of, with their role and size. "
        "Call to find a space's id before using a shared collection's tools.",
        op.space_list,
        {"properties": {}},
        {
            "type": "object",
            "properties": {"spaces": {"type": "array", "items": _SPACE_OUT}},
            "required": ["spaces"],
        },
        read_only=True,
        idempotent=True,
    ),
    ToolRow(
        "spaces_get",
        "Show a space",
        "Show one shared space: its members (name, role, handle) and size. Call before "
        "changing roles or removing someone, to get their handle.",
        op.space_get,
        {"properties": {"space": _SPACE}, "required": ["space"]},
        {
            "type": "object",
            "properties": {
                "space": _SPACE_OUT,
                "members": {"type": "array", "items": _MEMBER_OUT},
                "pending_invites": _COUNT,
            },
            "required": ["space", "members"],
        },
        read_only=True,
        idempotent=True,
    ),
    ToolRow(
        "spaces_invite",
        "Invite to a space",
        "Add someone to a shared space the signed-in user owns, by their user id in this app "
        "(user), or by email where the app allows it (the invitation then waits until someone "
        "with that verified email signs in). Use only when the user asks to share.",
        op.space_invite,
        {
            "properties": {
                "space": _SPACE,
                "user": {"type": "string", "minLength": 1, "maxLength": 1024},
                "email": {"type": "string", "minLength": 3, "maxLength": 320},
                "role": {**_ROLE, "default": "editor"},
            },
            "required": ["space"],
        },
        {
            "type": "object",
            "properties": {"member": nullable(_MEMBER_OUT), "pending": {"type": "boolean"}},
            "required": ["pending"],
        },
        idempotent=True,
    ),
    ToolRow(
        "spaces_set_role",
        "Change a member's role",
        "Make a member of a shared space an owner, editor or viewer (owners only). Use when "
        "the user asks; a space always keeps at least one owner.",
        op.space_set_role,
        {
            "properties": {"space": _SPACE, "member": _MEMBER, "role": _ROLE},
            "required": ["space", "member", "role"],
        },
        {"type": "object", "properties": {"member": _MEMBER_OUT}, "required": ["member"]},
        idempotent=True,
    ),
    ToolRow(
        "spaces_remove_member",
        "Remove a member",
        "Remove someone from a shared space (owners only); they lose access at once. Use "
        "only when the user asks.",
        op.space_remove,
        {"properties": {"space": _SPACE, "member": _MEMBER}, "required": ["space", "member"]},
        {"type": "object", "properties": {"removed": {"type": "string"}}, "required": ["removed"]},
        destructive=True,
        idempotent=True,
    ),
    ToolRow(
        "spaces_leave",
        "Leave a space",
        "The signed-in user leaves a shared space. The last member leaving deletes the space "
        "and everything in it. Use only when the user asks, after confirming.",
        op.space_leave,
        {"properties": {"space": _SPACE}, "required": ["space"]},
        {
            "type": "object",
            "properties": {"left": {"type": "string"}, "space_deleted": {"type": "boolean"}},
            "required": ["left", "space_deleted"],
        },
        destructive=True,
    ),
    ToolRow(
        "spaces_changes",
        "What changed in a space",
        "The changes of a shared space since a cursor, oldest first, with who made each and "
        "when. A widget calls it to refresh only what changed; pass next_cursor next time "
        "(more: true means call again at once).",
        op.space_changes,
        {
            "properties": {
                "space": _SPACE,
                "cursor": {"type": "string", "maxLength": 512},
                "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
            },
            "required": ["space"],
        },
        {
            "type": "object",
            "properties": {
                "changes": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "seq": {"type": "integer"},
                            "collection": {"type": "string"},
                            "id": {"type": "string"},
                            "version": {"type": "integer"},
                            "action": {"type": "string", "enum": ["put", "delete", "expire"]},
                            "by": _AUTHOR,
                            "at": _TIMESTAMP,
                        },
                        "required": ["seq", "collection", "id", "version", "action", "by", "at"],
                    },
                },
                "next_cursor": {"type": "string"},
                "more": {"type": "boolean"},
            },
            "required": ["changes", "next_cursor", "more"],
        },
        read_only=True,
        idempotent=True,
    ),
)


# --- files -----------------------------------------------------------------------------------

_FILE_ID = {
    "type": "string",
    "pattern": "^[0-9a-f]{32}$",
    "description": "The file's id (from files_create_upload or files_list).",
}
_FILE_OUT = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "content_type": {"type": "string", "description": "What the bytes show, else declared."},
        "declared_type": {"type": "string"},
        "size": _COUNT,
        "sha256": nullable({"type": "string"}),
        "version": {**_COUNT, "description": "Uploads so far; 0 until the bytes arrive."},
        "status": {"type": "string", "enum": ["awaiting_upload", "ready"]},
        "created_at": _TIMESTAMP,
        "updated_at": _TIMESTAMP,
        "expires_at": nullable(_TIMESTAMP),
        "space": nullable(
            {"type": "string", "description": "The shared space it lives in; null: yours."}
        ),
        "created_by": nullable({**_AUTHOR, "description": "In a space: who created it."}),
        "updated_by": nullable(
            {**_AUTHOR, "description": "In a space: who uploaded its current version."}
        ),
    },
    "required": ["id", "name", "content_type", "size", "version", "status"],
}

#: The ``files`` argument of an object save, for a tenant that stores files.
LINKED_FILES_ARG = {
    "type": "array",
    "maxItems": 16,
    "uniqueItems": True,
    "items": _FILE_ID,
    "description": "Files this version of the object names, by id (from files_create_upload "
    "or files_list): the user's own files, or for an object in a space files of that space. "
    "A save without files names none. get and list return the object with these files and "
    "short-lived download links; a file deleted since drops out.",
}
_LINKING_OBJECT = {
    "type": "object",
    "properties": {
        "collection": {"type": "string"},
        "id": {"type": "string"},
        "space": {"type": "string", "description": "Set for an object in a shared space."},
    },
    "required": ["collection", "id"],
}

#: The tools of a tenant whose spec has ``files``.
FILE_TOOLS = (
    ToolRow(
        "files_create_upload",
        "Start a file upload",
        "Create a file (an image, PDF, audio note, export) for the signed-in user and get a "
        "short-lived upload link. Call when a component has bytes to keep: the component, not "
        "the model, PUTs exactly `size` bytes to upload.url with upload.headers (never send "
        "the bytes through the conversation). Pass space to put the file in a shared space "
        "(needs the editor or owner role there; every member can then read it). Pass id to "
        "upload a new version of an existing file. Returns the file's id: keep it in the "
        "object or widget state that refers to it.",
        op.files_create_upload,
        {
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 255},
                "content_type": {
                    "type": "string",
                    "minLength": 3,
                    "maxLength": 255,
                    "description": "The file's media type, e.g. image/png or application/pdf.",
                },
                "size": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "The exact number of bytes the upload will send.",
                },
                "sha256": {
                    "type": "string",
                    "pattern": "^[0-9a-fA-F]{64}$",
                    "description": "The bytes' SHA-256 (hex); when given, an upload that does "
                    "not match it is refused.",
                },
                "id": {**_FILE_ID, "description": "Upload a new version of this file."},
                "space": {
                    **_SPACE,
                    "description": "Create the file in this shared space (from spaces_list); "
                    "leave out for the user's own file.",
                },
                "ttl_seconds": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": MAX_TTL_SECONDS,
                    "default": 0,
                    "description": "Delete the file this many seconds from now; 0 keeps it "
                    "as long as the app's retention allows.",
                },
            },
            "required": ["name", "content_type", "size"],
        },
        {
            "type": "object",
            "properties": {
                "file": _FILE_OUT,
                "upload": {
                    **_LINK,
                    "properties": {
                        **_LINK_PROPERTIES,
                        "headers": {"type": "object"},
                        "size": _COUNT,
                    },
                },
            },
            "required": ["file", "upload"],
        },
    ),
    ToolRow(
        "files_get",
        "Get a file",
        "Read a file's details (name, type, size, sha256, version) and a short-lived download "
        "link for a component to show or fetch it, and the objects that name it (linked_from, "
        "at most 50; more_linked_from when there are others). Call when you know the file's id "
        "(from an object, a widget's state or files_list). The link expires in minutes: get a "
        "new one rather than storing it.",
        op.files_get,
        {"properties": {"id": _FILE_ID}, "required": ["id"]},
        {
            "type": "object",
            "properties": {
                "file": _FILE_OUT,
                "download": _LINK,
                "linked_from": {"type": "array", "items": _LINKING_OBJECT},
                "more_linked_from": {"type": "boolean"},
            },
            "required": ["file", "linked_from", "more_linked_from"],
        },
        read_only=True,
        idempotent=True,
    ),
    ToolRow(
        "files_list",
        "List my files",
        "List the signed-in user's own files, or with space the files of that shared space, "
        "oldest first, one page at a time (no links; files_get gives one). Use to find a "
        "file the user refers to; pass next_cursor for the next page.",
        op.files_list,
        {
            "properties": {
                "space": {**_SPACE, "description": "List this shared space's files instead."},
                "page_size": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
                "cursor": {"type": "string", "maxLength": 512},
            },
        },
        {
            "type": "object",
            "properties": {
                "files": {"type": "array", "items": _FILE_OUT},
                "next_cursor": nullable({"type": "string"}),
            },
            "required": ["files", "next_cursor"],
        },
        read_only=True,
        idempotent=True,
    ),
    ToolRow(
        "files_delete",
        "Delete a file",
        "Delete one of the signed-in user's files, or a file of a shared space (needs the "
        "editor or owner role there), with its bytes. Use only when the user asks to remove "
        "it; links to it stop working at once.",
        op.files_delete,
        {"properties": {"id": _FILE_ID}, "required": ["id"]},
        {"type": "object", "properties": {"deleted": _FILE_OUT}, "required": ["deleted"]},
        destructive=True,
        idempotent=True,
    ),
)
