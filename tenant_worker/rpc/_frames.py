"""``Calls``: many unary calls on one long-lived stream, each run as its own RPC would be.

A unary RPC costs ``grpc.aio`` a call of its own on each side (metadata, deadline,
a handler task, four batches of operations); a frame on a stream that is already
open costs a message each way. Each :class:`~stowage.v1.worker_pb2.CallFrame` names a
unary method of the service and carries what its RPC would have carried (request,
metadata, timeout); the servicer's own method runs it, with a :class:`FrameContext`
standing in for the RPC's context, so the call is checked, traced, measured, logged
and answered exactly as that RPC (status, details, trailing metadata).

When the worker stops, :meth:`Frames.drain` tells each stream (a reply with id 0)
to take no more calls; the calls under way are still answered, and each stream ends
once its caller has closed its side, before the server's own shutdown grace ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any

import grpc

from stowage.frames import metadata_entries, metadata_pairs
from stowage.v1 import worker_pb2 as pb

log = logging.getLogger(__name__)

#: A batch is cut before it grows past this many bytes (a reply larger goes alone).
BATCH_BYTES = 2**20
#: The reply that tells a caller the stream takes no more calls.
_DRAINING = pb.ReplyFrame(id=0)


class _Aborted(Exception):
    """:meth:`FrameContext.abort`: the call ends with this status."""

    def __init__(self, code: grpc.StatusCode, details: str, trailing: Sequence[tuple[str, Any]]):
        super().__init__(details)
        self.code, self.details, self.trailing = code, details, trailing


class FrameContext:
    """What the servicer's unary methods use of an RPC's context, for one frame's call."""

    __slots__ = ("_code", "_deadline", "_details", "_metadata")

    def __init__(self, metadata: tuple[tuple[str, str | bytes], ...], deadline: float | None):
        self._metadata = metadata
        self._deadline = deadline
        self._code: grpc.StatusCode | None = None
        self._details: str | None = None

    def invocation_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return self._metadata

    def time_remaining(self) -> float | None:
        return None if self._deadline is None else max(0.0, self._deadline - time.monotonic())

    async def abort(
        self,
        code: grpc.StatusCode,
        details: str = "",
        trailing_metadata: Sequence[tuple[str, Any]] = (),
    ) -> None:
        self._code, self._details = code, details
        raise _Aborted(code, details, trailing_metadata)

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def details(self) -> str | None:
        return self._details


Method = Callable[[Any, FrameContext], Awaitable[Any]]


class Frames:
    """Serves ``Calls`` for a servicer: its unary methods, by path."""

    def __init__(self, servicer: object, service: str, max_message_bytes: int) -> None:
        self._max_bytes = max_message_bytes
        descriptor = pb.DESCRIPTOR.services_by_name[service.rsplit(".", 1)[-1]]
        self._methods: dict[str, tuple[Method, Callable[[bytes], Any]]] = {}
        for m in descriptor.methods:
            if m.client_streaming or m.server_streaming:
                continue
            request_type = getattr(pb, m.input_type.name)
            self._methods[f"/{service}/{m.name}"] = (
                getattr(servicer, m.name),
                request_type.FromString,
            )
        self._draining = asyncio.Event()

    def drain(self) -> None:
        """Each stream takes no more calls; those under way are still answered."""
        self._draining.set()

    async def serve(
        self, batches: AsyncIterator[pb.CallFrames], context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        # The stream's headers first, before any frame is read: a caller that never
        # saw them knows that none of its frames was run (a stream refused by a server
        # already stopping), and may send them again elsewhere.
        await context.send_initial_metadata(())
        ready: list[pb.ReplyFrame] = []  # replies not yet written: the next batch
        wake = asyncio.Event()
        ended = False
        running: dict[int, asyncio.Task[None]] = {}
        loop = asyncio.get_running_loop()

        def answer(reply: pb.ReplyFrame) -> None:
            ready.append(reply)
            wake.set()

        async def run(frame: pb.CallFrame) -> None:
            try:
                reply = await self._answer(frame)
            except Exception:
                log.exception("a call on a stream failed", extra={"method": frame.method})
                reply = pb.ReplyFrame(
                    id=frame.id,
                    code=grpc.StatusCode.INTERNAL.value[0],
                    details="internal error; see worker logs",
                )
            finally:
                running.pop(frame.id, None)
            answer(reply)

        async def read() -> None:
            nonlocal ended
            try:
                async for batch in batches:
                    for frame in batch.frames:
                        if frame.cancel:
                            task = running.get(frame.id)
                            if task is not None:
                                task.cancel()
                        else:
                            running[frame.id] = loop.create_task(run(frame))
            finally:
                # The caller closed its side (or the stream broke): answer what is
                # under way, then end the stream.
                if running:
                    await asyncio.wait(list(running.values()))
                ended = True
                wake.set()

        async def tell_when_draining() -> None:
            await self._draining.wait()
            answer(_DRAINING)

        reader = loop.create_task(read())
        teller = loop.create_task(tell_when_draining())
        try:
            while True:
                await wake.wait()
                wake.clear()
                if ready:
                    replies = ready[:]
                    ready.clear()  # what comes during the writes goes in the next ones
                    for batch in self._batches(replies):
                        await context.write(batch)
                elif ended:
                    break
                if ended:
                    wake.set()  # write what came meanwhile, then end
        finally:
            teller.cancel()
            if not reader.done():
                reader.cancel()
                for task in list(running.values()):
                    task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    def _batches(self, replies: list[pb.ReplyFrame]) -> Iterator[pb.ReplyFrames]:
        """``replies`` in messages of at most :data:`BATCH_BYTES` (one reply may fill
        one alone); a reply larger than the server sends fails as its RPC would."""
        batch: list[pb.ReplyFrame] = []
        size = 0
        for reply in replies:
            n = reply.ByteSize()
            if n > self._max_bytes - 64:
                reply = pb.ReplyFrame(
                    id=reply.id,
                    code=grpc.StatusCode.RESOURCE_EXHAUSTED.value[0],
                    details=f"the answer is larger than the {self._max_bytes} bytes a worker sends",
                )
                n = reply.ByteSize()
            if batch and size + n > BATCH_BYTES:
                yield pb.ReplyFrames(frames=batch)
                batch, size = [], 0
            batch.append(reply)
            size += n
        if batch:
            yield pb.ReplyFrames(frames=batch)

    async def _answer(self, frame: pb.CallFrame) -> pb.ReplyFrame:
        found = self._methods.get(frame.method)
        if found is None:
            return pb.ReplyFrame(
                id=frame.id,
                code=grpc.StatusCode.UNIMPLEMENTED.value[0],
                details=f"no unary method {frame.method!r} on this stream",
            )
        method, parse = found
        timeout = frame.timeout_ms / 1000 if frame.timeout_ms else None
        deadline = None if timeout is None else time.monotonic() + timeout
        context = FrameContext(metadata_pairs(frame.metadata), deadline)
        try:
            request = parse(frame.request)
        except Exception:
            return pb.ReplyFrame(
                id=frame.id,
                code=grpc.StatusCode.INTERNAL.value[0],
                details="the request message could not be parsed",
            )
        try:
            async with asyncio.timeout(timeout):
                response = await method(request, context)
        except _Aborted as e:
            return pb.ReplyFrame(
                id=frame.id,
                code=e.code.value[0],
                details=e.details,
                trailing_metadata=metadata_entries(e.trailing),
            )
        except TimeoutError:
            return pb.ReplyFrame(
                id=frame.id,
                code=grpc.StatusCode.DEADLINE_EXCEEDED.value[0],
                details="Deadline Exceeded",
            )
        return pb.ReplyFrame(id=frame.id, response=response.SerializeToString())
