"""The worker's unary methods called over one long-lived ``Calls`` stream per channel.

A unary RPC costs ``grpc.aio`` a call of its own on each side; a frame on a stream
already open costs a message each way. :class:`StreamedChannel` stands in for the
channel a stub is made with: the stub's unary methods send frames on the channel's
stream (:class:`CallStream`), its streaming methods stay RPCs of their own. Each
call keeps its own timeout, metadata and answer: a failure comes back as the same
``grpc.aio.AioRpcError`` (code, details, trailing metadata) its RPC would have raised,
so the callers above read it as before.

- The stream is opened on the first call and again after it ends. When it breaks
  (the worker gone), the calls under way on it fail UNAVAILABLE, as an RPC on a
  broken connection does.
- A worker that is stopping says so (a reply with id 0): later calls go on a new
  stream, which reaches a worker that is not stopping; this one is closed once its
  calls are answered.
- The worker sends a stream's headers before it reads a frame. A stream that ends
  before they came (refused by a server already stopping) ran none of its calls:
  they are sent again on a new one, three times at most, writes included.
- A worker without ``Calls`` (one older than this gateway, while a release rolls)
  answers the stream UNIMPLEMENTED: its calls, and every later one on the channel,
  are sent as RPCs of their own.
- A call that times out or is cancelled here is cancelled on the worker too.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import grpc

from stowage.frames import CALLS_PATH, metadata_entries, metadata_pairs
from stowage.v1 import worker_pb2 as pb

log = logging.getLogger(__name__)

_CODES = {code.value[0]: code for code in grpc.StatusCode}
#: A write on the stream is cut before it grows past this many bytes (a worker accepts
#: messages of 2 MiB at least: its STOWAGE_WORKER_MAX_MESSAGE_BYTES cannot be less).
BATCH_BYTES = 2**20
#: A request larger than this goes as an RPC of its own: alone on the wire, as large as
#: the worker accepts, and refused (RESOURCE_EXHAUSTED) alone when it is larger.
FRAME_BYTES = BATCH_BYTES // 2


class _Unsupported(Exception):
    """The worker has no ``Calls``: send the call as an RPC of its own."""


class _NotRun(Exception):
    """The stream ended before the worker accepted it (its headers): none of its frames
    was run, so the call may be sent again on another stream."""


def _error(
    code: grpc.StatusCode, details: str, trailing: Sequence[tuple[str, str | bytes]] = ()
) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailing), details=details
    )


class _Stream:
    """One ``Calls`` stream: the calls waiting for their replies, by id."""

    def __init__(self, call: Any) -> None:
        self._call = call
        self._lock = asyncio.Lock()
        self._outbox: list[pb.CallFrame] = []  # frames waiting for the next write
        self._tasks: set[asyncio.Task[None]] = set()  # flushes and half-closes under way
        self.waiting: dict[int, asyncio.Future[pb.ReplyFrame]] = {}
        #: No new calls: the worker is stopping, or the stream has ended.
        self.closed = False
        self._half_closed = False
        self.reader = asyncio.get_running_loop().create_task(self._read())

    def send(self, frame: pb.CallFrame) -> bool:
        """Send ``frame``; False if the stream takes no new calls (not sent).

        Frames sent while a write is under way go together in the next one. A write
        that fails ends the stream, and its end fails the calls waiting on it.
        """
        if self.closed:
            return False
        self._enqueue(frame)
        return True

    def cancel(self, frame_id: int) -> None:
        """Cancel the call on the worker (also on a stream that takes no new calls)."""
        if not self._half_closed and not self.reader.done():
            self._enqueue(pb.CallFrame(id=frame_id, cancel=True))

    def _enqueue(self, frame: pb.CallFrame) -> None:
        self._outbox.append(frame)
        if len(self._outbox) == 1:
            self._later(self._flush())

    def _later(self, work: Coroutine[Any, Any, None]) -> None:
        self._tasks.add(task := asyncio.get_running_loop().create_task(work))
        task.add_done_callback(self._tasks.discard)

    async def _flush(self) -> None:
        async with self._lock:
            frames: list[pb.CallFrame] = []
            size = 0
            for frame in self._outbox:
                size += frame.ByteSize()
                if frames and size > BATCH_BYTES:
                    break
                frames.append(frame)
            del self._outbox[: len(frames)]
            if self._outbox:  # the rest in a write of its own, after this one
                self._later(self._flush())
            try:
                await self._call.write(pb.CallFrames(frames=frames))
            except Exception:
                self.closed = True  # the stream has ended: its reader fails its calls
        if self.closed:
            await self._half_close_when_idle()

    async def close(self) -> None:
        """Take no new calls; once those under way are answered, close this side."""
        self.closed = True
        await self._half_close_when_idle()

    async def _half_close_when_idle(self) -> None:
        if self.waiting or self._outbox or self._half_closed:
            return
        with contextlib.suppress(Exception):
            async with self._lock:
                if not self._half_closed:
                    self._half_closed = True
                    await self._call.done_writing()

    async def _read(self) -> None:
        failure: Callable[[], BaseException] = lambda: _error(  # noqa: E731
            grpc.StatusCode.UNAVAILABLE, "the worker's stream ended"
        )
        accepted = False
        try:
            await self._call.initial_metadata()
            accepted = True
            async for batch in self._call:
                for reply in batch.frames:
                    if reply.id == 0:  # the worker is stopping
                        self.closed = True
                    else:
                        waiter = self.waiting.pop(reply.id, None)
                        if waiter is not None and not waiter.done():
                            waiter.set_result(reply)
                if self.closed:  # a task: the reader never waits behind a write
                    self._later(self._half_close_when_idle())
        except grpc.aio.AioRpcError as e:
            code = e.code()
            if code == grpc.StatusCode.UNIMPLEMENTED:
                failure = _Unsupported
            elif not accepted:
                failure = _NotRun
            else:
                failure = lambda: _error(  # noqa: E731
                    grpc.StatusCode.UNAVAILABLE, f"the worker's stream failed ({code.name})"
                )
        finally:
            self.closed = True
            for waiter in self.waiting.values():
                if not waiter.done():
                    waiter.set_exception(failure())
            self.waiting.clear()


class CallStream:
    """The channel's ``Calls`` stream, opened when a call needs it."""

    def __init__(self, channel: grpc.aio.Channel, metadata: Sequence[tuple[str, str]]) -> None:
        self._open = channel.stream_stream(
            CALLS_PATH,
            request_serializer=pb.CallFrames.SerializeToString,
            response_deserializer=pb.ReplyFrames.FromString,
        )
        self._metadata = tuple(metadata)
        self._stream: _Stream | None = None
        self._ids = itertools.count(1)
        self._closing: set[asyncio.Task[None]] = set()
        #: False once the worker answered that it has no ``Calls``.
        self.supported = True

    def _current(self) -> _Stream:
        stream = self._stream
        if stream is None or stream.closed:
            if stream is not None:
                task = asyncio.get_running_loop().create_task(stream.close())
                self._keep(task)
            stream = self._stream = _Stream(self._open(metadata=self._metadata))
        return stream

    def _keep(self, task: asyncio.Task[None]) -> None:
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def call(
        self,
        method: str,
        request: bytes,
        metadata: Sequence[tuple[str, str | bytes]],
        seconds: float | None,
    ) -> bytes:
        """The response of one call of ``method``; raises ``AioRpcError`` as its RPC would."""
        frame = pb.CallFrame(
            id=next(self._ids),
            method=method,
            request=request,
            metadata=metadata_entries(metadata),
            timeout_ms=max(1, int(seconds * 1000)) if seconds is not None else 0,
        )
        stream, waiter = self._send(frame)
        on = [stream]  # the stream the frame was last sent on
        try:
            async with asyncio.timeout(seconds):
                reply = await self._reply(frame, on, waiter)
        except TimeoutError:
            self._cancel(on[0], frame.id)
            raise _error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded") from None
        except asyncio.CancelledError:
            self._cancel(on[0], frame.id)
            raise
        if reply.code == 0:
            return reply.response
        code = _CODES.get(reply.code, grpc.StatusCode.UNKNOWN)
        raise _error(code, reply.details, metadata_pairs(reply.trailing_metadata))

    def _send(self, frame: pb.CallFrame) -> tuple[_Stream, asyncio.Future[pb.ReplyFrame]]:
        """Send ``frame`` on the current stream (a new one if it takes no calls); the
        stream and the future of its reply."""
        for _ in range(3):
            stream = self._current()
            waiter: asyncio.Future[pb.ReplyFrame] = asyncio.get_running_loop().create_future()
            stream.waiting[frame.id] = waiter
            if stream.send(frame):
                break
            stream.waiting.pop(frame.id, None)  # not sent: closed meanwhile, try a new one
        else:
            raise _error(grpc.StatusCode.UNAVAILABLE, "the worker's stream took no calls")
        return stream, waiter

    async def _reply(
        self, frame: pb.CallFrame, on: list[_Stream], waiter: asyncio.Future[pb.ReplyFrame]
    ) -> pb.ReplyFrame:
        """The reply to ``frame``; sent again on a new stream while the stream it was sent
        on ends before the worker accepted it (a server stopping), three times at most."""
        for attempt in range(3):
            try:
                return await waiter
            except _NotRun:
                if attempt == 2:
                    raise _error(
                        grpc.StatusCode.UNAVAILABLE, "the worker did not accept the call stream"
                    ) from None
            # A moment first: a server that is stopping has told the channel to go
            # elsewhere (GOAWAY), which it may not have read yet.
            await asyncio.sleep(0.05 * 2**attempt)
            on[0], waiter = self._send(frame)
        raise AssertionError("unreachable")

    def _cancel(self, stream: _Stream, frame_id: int) -> None:
        if stream.waiting.pop(frame_id, None) is not None:
            stream.cancel(frame_id)

    async def close(self) -> None:
        """Close this side of the stream once its calls are answered."""
        if self._stream is not None:
            await self._stream.close()


class _StreamedMethod(grpc.aio.UnaryUnaryMultiCallable):  # type: ignore[misc]
    """A unary method of the stub, called on the channel's stream (or as an RPC of its
    own, where the worker has no stream)."""

    def __init__(
        self,
        calls: CallStream,
        method: str,
        serialize: Callable[[Any], bytes],
        parse: Callable[[bytes], Any],
        plain: grpc.aio.UnaryUnaryMultiCallable,  # type: ignore[type-arg]
    ) -> None:
        self._calls, self._method = calls, method
        self._serialize, self._parse, self._plain = serialize, parse, plain

    def __call__(  # type: ignore[override]
        self,
        request: Any,
        *,
        timeout: float | None = None,
        metadata: Sequence[tuple[str, str | bytes]] | None = None,
        **kw: Any,
    ) -> Any:
        return self._invoke(request, timeout, metadata or (), kw)

    async def _invoke(
        self,
        request: Any,
        seconds: float | None,
        metadata: Sequence[tuple[str, str | bytes]],
        kw: dict[str, Any],
    ) -> Any:
        data = self._serialize(request)
        if self._calls.supported and len(data) <= FRAME_BYTES:
            try:
                reply = await self._calls.call(self._method, data, metadata, seconds)
            except _Unsupported:
                if self._calls.supported:
                    log.info("the worker has no call stream; calling it an RPC a call")
                self._calls.supported = False
            else:
                return self._parse(reply)
        return await self._plain(request, timeout=seconds, metadata=metadata, **kw)


class StreamedChannel:
    """What a generated stub is made with: unary methods on the channel's stream."""

    def __init__(self, channel: grpc.aio.Channel, calls: CallStream) -> None:
        self._channel, self._calls = channel, calls

    def unary_unary(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes],
        response_deserializer: Callable[[bytes], Any],
        **kw: Any,
    ) -> _StreamedMethod:
        plain = self._channel.unary_unary(method, request_serializer, response_deserializer, **kw)
        return _StreamedMethod(
            self._calls, method, request_serializer, response_deserializer, plain
        )

    def unary_stream(self, *args: Any, **kw: Any) -> Any:
        return self._channel.unary_stream(*args, **kw)

    def stream_unary(self, *args: Any, **kw: Any) -> Any:
        return self._channel.stream_unary(*args, **kw)

    def stream_stream(self, *args: Any, **kw: Any) -> Any:
        return self._channel.stream_stream(*args, **kw)
