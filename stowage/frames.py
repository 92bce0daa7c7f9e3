"""The ``Calls`` stream's frames, as both ends read them: metadata in and out of a frame.

A call on the stream carries what its own RPC would have carried; these helpers turn
gRPC metadata (text values, bytes for a ``-bin`` key) into a frame's entries and back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from stowage.v1 import worker_pb2 as pb

#: The stream's method.
CALLS_PATH = "/stowage.v1.TenantWorker/Calls"


def metadata_entries(metadata: Iterable[tuple[str, str | bytes]]) -> list[pb.MetadataEntry]:
    return [
        pb.MetadataEntry(key=k, value=v if isinstance(v, bytes) else v.encode())
        for k, v in metadata
    ]


def metadata_pairs(entries: Sequence[pb.MetadataEntry]) -> tuple[tuple[str, str | bytes], ...]:
    """As gRPC hands metadata over: bytes for a ``-bin`` key, text for any other."""
    return tuple((e.key, e.value if e.key.endswith("-bin") else e.value.decode()) for e in entries)
