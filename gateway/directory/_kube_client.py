"""Just enough of a Kubernetes API client to list and watch one collection, read-only.

Built on :mod:`httpx`, which the gateway loads anyway; a generated client (and
the HTTP library under it) would add half a second to every start.

A list answer is read as it arrives and handed over one item at a time: the
caller can parse ten thousand Tenants between requests it serves, and need
not ask for small pages to stay responsive. (An API server serves a whole list
from its cache; the pages after the first of a paged list it may read from
etcd instead, several times the work.) A watch is a stream of events, one JSON
document a line.

Errors leave this module as :class:`~gateway._errors.KubeUnavailable` (its
:class:`~gateway._errors.KubeExpired` for 410 Gone), chained to the cause.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import queue
import re
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from typing import Any

import anyio.to_thread
import httpx

from gateway._errors import KubeExpired, KubeUnavailable
from gateway.directory._kube_config import KubeAccess

#: An API server answers a plain request within this (seconds); a watch gets longer.
REQUEST_TIMEOUT = 30.0

Body = dict[str, Any]
#: Compressed, a list comes in a few hundred pieces instead of ten thousand.
HEADERS = {"Accept": "application/json", "Accept-Encoding": "gzip"}


class KubeClient:
    """Lists and watches collections on one API server. Use as an async context manager."""

    def __init__(self, access: KubeAccess) -> None:
        self._access = access
        self._http = httpx.AsyncClient(
            base_url=access.server,
            verify=access.verify,
            timeout=REQUEST_TIMEOUT,
            headers=HEADERS,
        )

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    def list(
        self, path: str, limit: int = 0, token: str | None = None, selector: str | None = None
    ) -> ListAnswer:
        """The collection at ``path``: all of it, or ``limit`` items continuing after ``token``;
        only the objects matching the label ``selector`` when one is given."""
        params = _list_params(limit, token)
        if selector:
            params["labelSelector"] = selector
        request = self._http.build_request(
            "GET", path, params=params, headers=self._access.headers()
        )
        return ListAnswer(_body(self._http, request), f"GET {path}")

    async def watch(
        self, path: str, version: str, seconds: int, selector: str | None = None
    ) -> AsyncGenerator[Body]:
        """The events of the collection at ``path`` (objects matching the label ``selector``)
        after ``version``, with bookmarks, until the server ends the watch (after
        ``seconds``). An ERROR event is raised."""
        params = {
            "watch": "true",
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(seconds),
        }
        if selector:
            params["labelSelector"] = selector
        # Bookmarks come about once a minute; the server ends the watch after ``seconds``.
        read = httpx.Timeout(REQUEST_TIMEOUT, read=seconds + REQUEST_TIMEOUT)
        request = self._http.build_request(
            "GET", path, params=params, headers=self._access.headers(), timeout=read
        )
        try:
            async with _answer(self._http, request) as response:
                async for line in response.aiter_lines():
                    if line:
                        event: Body = json.loads(line)
                        if event.get("type") == "ERROR":
                            status = event.get("object") or {}
                            raise _refused(int(status.get("code") or 500), status)
                        yield event
        except httpx.HTTPError as e:
            raise KubeUnavailable(f"watch {path}: {type(e).__name__}: {e}") from e
        except ValueError as e:
            raise KubeUnavailable(f"watch {path}: not JSON: {e}") from e


def list_ahead(access: KubeAccess, path: str, limit: int = 0) -> ListAnswer:
    """The collection at ``path``, asked for now by a thread of its own that reads the
    answer while the process does other things (before its event loop even runs)."""
    chunks: queue.SimpleQueue[bytes | Exception | None] = queue.SimpleQueue()

    def read() -> None:
        try:
            with (
                httpx.Client(verify=access.verify, timeout=REQUEST_TIMEOUT) as http,
                http.stream(
                    "GET",
                    access.server + path,
                    params=_list_params(limit, None),
                    headers={**HEADERS, **access.headers()},
                ) as response,
            ):
                if response.status_code >= 400:
                    raise _refused(response.status_code, response.read())
                for chunk in response.iter_bytes():
                    chunks.put(chunk)
            chunks.put(None)
        except Exception as e:  # the reader raises it
            chunks.put(e)

    threading.Thread(target=read, name="kube-list-ahead", daemon=True).start()
    return ListAnswer(_queued(chunks), f"GET {path}")


class ListAnswer:
    """One list answer: its items as they arrive, then (once read) its ``metadata``."""

    def __init__(self, body: AsyncGenerator[bytes], where: str) -> None:
        self._body = body
        self._where = where
        #: The list's metadata (``resourceVersion``, ``continue``), once the items are read.
        self.metadata: Body = {}

    async def items(self) -> AsyncGenerator[Body]:
        reader = _ListReader()
        text = codecs.getincrementaldecoder("utf-8")()
        try:
            async with contextlib.aclosing(self._body):
                async for chunk in self._body:
                    for item in reader.feed(text.decode(chunk)):
                        yield item
        except httpx.HTTPError as e:
            raise KubeUnavailable(f"{self._where}: {type(e).__name__}: {e}") from e
        except ValueError as e:
            raise KubeUnavailable(f"{self._where}: not JSON: {e}") from e
        if not reader.done:
            raise KubeUnavailable(f"{self._where}: the list ended early")
        metadata = reader.fields.get("metadata")
        self.metadata = metadata if isinstance(metadata, dict) else {}


def _list_params(limit: int, token: str | None) -> dict[str, str]:
    params = {"limit": str(limit)} if limit else {}
    if token:
        params["continue"] = token
    return params


async def _body(http: httpx.AsyncClient, request: httpx.Request) -> AsyncGenerator[bytes]:
    async with _answer(http, request) as response:
        async for chunk in response.aiter_bytes():
            yield chunk


async def _queued(chunks: queue.SimpleQueue[bytes | Exception | None]) -> AsyncGenerator[bytes]:
    """The chunks a thread puts in ``chunks``, up to None; an exception it puts is raised."""
    while True:
        try:
            chunk = chunks.get_nowait()
        except queue.Empty:
            chunk = await anyio.to_thread.run_sync(chunks.get, abandon_on_cancel=True)
        if chunk is None:
            return
        if isinstance(chunk, Exception):
            raise chunk
        yield chunk


@contextlib.asynccontextmanager
async def _answer(http: httpx.AsyncClient, request: httpx.Request) -> AsyncIterator[httpx.Response]:
    """The streamed response to ``request``; an error status raised as ours."""
    response = await http.send(request, stream=True)
    try:
        if response.status_code >= 400:
            raise _refused(response.status_code, await response.aread())
        yield response
    finally:
        await response.aclose()


_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def _skip_space(text: str, at: int) -> int:
    """Where the first character after any whitespace from ``at`` is."""
    return _SPACE.match(text, at).end()  # type: ignore[union-attr]  # it matches "" too


class _ListReader:
    """Reads a JSON object ``{"items": [...], "metadata": {...}, ...}`` fed in pieces.

    Each item is handed over once it is complete; the other fields are kept in
    ``fields``, in whatever order they come. A value counts as complete only
    when something follows it (a number cut at the end of a piece would
    otherwise read as a shorter one).
    """

    def __init__(self) -> None:
        self.fields: Body = {}
        self.done = False
        self._text = ""
        self._at = 0
        self._state = "start"  # start, key, value, items, done
        self._key = ""

    def feed(self, piece: str) -> Iterator[Body]:
        self._text = self._text[self._at :] + piece
        self._at = 0
        while not self.done:
            at = _skip_space(self._text, self._at)
            if at >= len(self._text):
                return
            char = self._text[at]
            if self._state == "start":
                self._expect(char, "{")
                self._at, self._state = at + 1, "key"
            elif self._state == "key" and char in ",}":
                self._at, self.done = at + 1, char == "}"
            elif self._state == "key":
                key = self._value(at)
                if key is None:
                    return
                colon = _skip_space(self._text, key[1])
                if colon >= len(self._text):
                    return
                self._expect(self._text[colon], ":")
                self._key, self._at, self._state = str(key[0]), colon + 1, "value"
            elif self._state == "value" and self._key == "items" and char == "[":
                self._at, self._state = at + 1, "items"
            elif self._state == "value":
                value = self._value(at)
                if value is None:
                    return
                self.fields[self._key], self._at, self._state = value[0], value[1], "key"
            elif char in ",]":  # between items
                self._at, self._state = at + 1, "items" if char == "," else "key"
            else:
                item = self._value(at)
                if item is None:
                    return
                self._at = item[1]
                yield item[0]

    def _value(self, at: int) -> tuple[Any, int] | None:
        """The JSON value at ``at`` and where it ends; None until more text follows it."""
        try:
            value, end = _DECODER.raw_decode(self._text, at)
        except json.JSONDecodeError:
            return None  # cut off (or broken: the answer then ends early)
        if _skip_space(self._text, end) >= len(self._text):
            return None
        return value, end

    @staticmethod
    def _expect(char: str, wanted: str) -> None:
        if char != wanted:
            raise ValueError(f"expected {wanted!r}, found {char!r}")


def _refused(status: int, body: bytes | Mapping[str, Any]) -> KubeUnavailable:
    """The error for an answer (or a watch's ERROR event) with a Kubernetes Status."""
    status_body: object = body
    if isinstance(body, bytes):
        try:
            status_body = json.loads(body)
        except ValueError:
            status_body = {"message": body[:200].decode(errors="replace")}
    message = status_body.get("message") if isinstance(status_body, Mapping) else None
    text = f"HTTP {status}: {message or 'no message'}"
    return KubeExpired(text) if status == 410 else KubeUnavailable(text, status)
