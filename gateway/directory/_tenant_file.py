"""Tenants from a YAML file, in the Tenant resource's spec shape, reloaded on change.

The file holds either ``tenants: [{name, endpoint, auth, rateLimits, ...}]`` or a
mapping ``tenants: {name: {endpoint, auth, ...}}``; beside ``endpoint``, an
optional ``instance`` names the worker instance it must reach (the worker
refuses calls meant for another one). Components carry their HTML inline: a
file has no ConfigMaps, so ``htmlFrom`` is refused, naming the field. A broken
edit keeps the last good set and is logged; the gateway never serves from a
half-read file.

No request waits on a reload: a helper process reads and parses the file
(:mod:`gateway.directory._tenant_entries`) and hands back one line per tenant with a
digest; the event loop parses only the tenants whose digest it has not seen,
in slices of a few milliseconds, and keeps the Tenant objects of the others
(so their tool catalogues stay built too). The new set is published as one
mapping.

The first read can start before the event loop does (``read_ahead``, called
by the CLI before the app's imports): the helper then parses the file while
this process is still loading its own code.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import anyio
import anyio.lowlevel
import anyio.to_thread

from gateway._errors import TenantConfigError
from gateway._types import Tenant, TenantName
from gateway.directory import _tenant_entries
from stowage.tenant_spec import SpecError, parse_tenant_spec
from stowage.wire import INSTANCE

log = logging.getLogger(__name__)

#: The event loop's longest stretch of parsing before it serves requests again.
SLICE_SECONDS = 0.005


def _route(
    where: str, spec: Mapping[str, Any], endpoint: str | None, instance: str | None
) -> tuple[str, str | None]:
    """The worker's endpoint and instance id: as given, else from the spec's entry."""
    endpoint = endpoint or spec.get("endpoint")
    if not isinstance(endpoint, str) or ":" not in endpoint:
        raise TenantConfigError(f"{where}.endpoint: expected host:port")
    instance = instance or spec.get("instance")
    if instance is not None and not (isinstance(instance, str) and INSTANCE.match(instance)):
        raise TenantConfigError(f"{where}.instance: expected 1 to 64 of A-Z a-z 0-9 . _ -")
    return endpoint, instance


def parse_tenant(
    name: str,
    spec: Mapping[str, Any],
    endpoint: str | None = None,
    instance: str | None = None,
) -> Tenant:
    """One tenant from its spec (the shared parser); TenantConfigError names the field.

    ``endpoint`` and ``instance`` (the worker's instance id, checked by the worker
    on every call) are the spec entry's own when not given.
    """
    where = f"tenants.{name}"
    endpoint, instance = _route(where, spec, endpoint, instance)
    try:
        parsed = parse_tenant_spec(spec, where=where)
    except SpecError as e:
        raise TenantConfigError(str(e)) from e
    if parsed.auth is None:
        raise TenantConfigError(f"{where}.auth: expected a mapping with issuer and audience")
    return Tenant(name=TenantName(name), endpoint=endpoint, spec=parsed, instance=instance)


def _inline_components_only(tenant: Tenant) -> Tenant:
    """A tenant of the file; TenantConfigError for a component whose HTML is in a ConfigMap.

    A tenants file has no ConfigMaps to read (``htmlFrom`` is for Tenant
    resources): its components carry their HTML inline.
    """
    for i, component in enumerate(tenant.spec.components):
        if component.html_from is not None:
            raise TenantConfigError(
                f"tenants.{tenant.name}.components[{i}].htmlFrom: a tenants file has no "
                "ConfigMaps; put the component's HTML inline (html)"
            )
    return tenant


class Slices:
    """Lets the event loop serve requests between slices of a long computation."""

    def __init__(self, seconds: float = SLICE_SECONDS) -> None:
        self.seconds = seconds
        self._started = time.perf_counter()

    async def tick(self) -> None:
        """Yield to the loop when the current slice has run its time."""
        if time.perf_counter() - self._started >= self.seconds:
            await anyio.lowlevel.checkpoint()
            self._started = time.perf_counter()


Handle = Callable[[bytes], Awaitable[None]]


def _command(path: Path) -> list[str]:
    return [sys.executable, "-m", _tenant_entries.__name__, str(path)]


class ReaderKilled(Exception):
    """The helper ended by a signal before it judged the file: the file must be read again."""


def _raise_if_rejected(path: Path, status: int, errors: BinaryIO) -> None:
    """TenantConfigError with the helper's message when it rejected the file;
    ReaderKilled when a signal ended it (it rejected nothing)."""
    if status < 0:
        raise ReaderKilled(f"{path}: its reader was ended by signal {-status}")
    if status != 0:
        errors.seek(0)
        message = errors.read(64 * 1024).decode(errors="replace").strip().splitlines()
        raise TenantConfigError(message[-1] if message else f"{path}: reader exited {status}")


async def _each_entry(path: Path, handle: Handle) -> None:
    """``handle`` each of the helper's lines for ``path``, as they come.

    Raises TenantConfigError with the helper's message when it rejects the file.
    """
    # Its few lines of errors go to a file: nothing to read concurrently with stdout.
    with tempfile.TemporaryFile() as errors:
        process = await anyio.open_process(_command(path), stdin=subprocess.DEVNULL, stderr=errors)
        async with process:
            assert process.stdout is not None
            rest = b""
            async for chunk in process.stdout:
                *lines, rest = (rest + chunk).split(b"\n")
                for line in lines:
                    await handle(line)
            status = await process.wait()
        _raise_if_rejected(path, status, errors)


@dataclass
class _StartedReader:
    """The helper for one read, started before the event loop was (``read_ahead``)."""

    path: Path
    #: The file as it was just before the helper started.
    stamp: tuple[int, int, int] | None
    process: subprocess.Popen[bytes]
    errors: BinaryIO

    @classmethod
    def start(cls, path: Path, stamp: tuple[int, int, int] | None) -> _StartedReader:
        # Closed by each_entry, which takes the helper's output and message.
        errors = tempfile.TemporaryFile()  # noqa: SIM115
        command = _command(path)
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors
        )
        return cls(path, stamp, process, errors)

    async def each_entry(self, handle: Handle) -> None:
        """Like :func:`_each_entry`, from this helper (its pipe read in a worker thread)."""
        stdout = self.process.stdout
        assert stdout is not None
        try:
            rest = b""
            while chunk := await anyio.to_thread.run_sync(os.read, stdout.fileno(), 1 << 16):
                *lines, rest = (rest + chunk).split(b"\n")
                for line in lines:
                    await handle(line)
            status = await anyio.to_thread.run_sync(self.process.wait)
            _raise_if_rejected(self.path, status, self.errors)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            stdout.close()
            self.errors.close()


class TenantFile:
    """The tenants of one file, re-read into the Tenant objects it already has where it can."""

    def __init__(self, path: Path) -> None:
        self.path = path
        #: The Tenant of each entry digest of the last good read.
        self._known: dict[bytes, Tenant] = {}

    async def read(
        self, started: _StartedReader | None = None
    ) -> tuple[dict[TenantName, Tenant], int]:
        """The whole set and how many of its tenants were parsed anew (the rest were kept);
        from ``started``'s lines when given."""
        tenants: dict[TenantName, Tenant] = {}
        known: dict[bytes, Tenant] = {}
        parsed = 0
        slices = Slices()

        async def take(line: bytes) -> None:
            nonlocal parsed
            digest, _, entry = line.partition(b" ")
            tenant = self._known.get(digest)
            if tenant is None:
                name, endpoint, instance, spec = json.loads(entry)
                if not isinstance(spec, Mapping):
                    raise TenantConfigError(f"tenants.{name}: expected a mapping")
                tenant = _inline_components_only(parse_tenant(name, spec, endpoint, instance))
                parsed += 1
            known[digest] = tenant
            tenants[tenant.name] = tenant
            await slices.tick()

        if started is not None:
            await started.each_entry(take)
        else:
            await _each_entry(self.path, take)
        self._known = known
        return tenants, parsed


class FileTenantSource:
    """A :class:`~gateway.directory._directory.TenantSource` over one YAML file.

    Polls the file's modification time and size every ``interval`` seconds (cheap,
    and works on every filesystem, including a ConfigMap's symlink swaps).
    """

    def __init__(self, path: Path, interval: float = 1.0) -> None:
        self.path = path
        self.interval = interval
        self._started: _StartedReader | None = None

    def read_ahead(self) -> None:
        """Start the first read's helper now, before the event loop (and the app's imports):
        it parses the file meanwhile, and ``watch`` takes its lines."""
        stamp = self._stamp()
        if self._started is None and stamp is not None:  # a missing file: nothing to read
            self._started = _StartedReader.start(self.path, stamp)

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    async def watch(self, publish: Callable[[Mapping[TenantName, Tenant]], None]) -> None:
        file = TenantFile(self.path)
        seen: tuple[int, int, int] | None = None
        first = True
        while True:
            # The first pass takes the read started ahead, and the file as it was then.
            started, self._started = self._started, None
            stamp = started.stamp if started is not None else self._stamp()
            if stamp != seen or first:
                seen = stamp
                try:
                    tenants = await self._read(file, missing=stamp is None, started=started)
                except ReaderKilled as e:
                    # Nothing was judged: the same file is read again on the next pass.
                    log.error("tenant file not read; reading it again: %s", e)
                    seen = None
                    await anyio.sleep(self.interval)
                    continue
                if tenants is not None:
                    publish(tenants)
                elif first:
                    publish({})
                first = False
            await anyio.sleep(self.interval)

    async def _read(
        self, file: TenantFile, missing: bool, started: _StartedReader | None = None
    ) -> dict[TenantName, Tenant] | None:
        """The file's tenants (none when it is ``missing``); None when it is rejected."""
        log.info("tenant file changed; reading it", extra={"path": str(self.path)})
        try:
            tenants, parsed = ({}, 0) if missing else await file.read(started)
        except ReaderKilled:
            raise
        except (OSError, TenantConfigError) as e:
            log.error("tenant file rejected; keeping the last good set: %s", e)
            return None
        except Exception:  # the source must outlive any one failure
            log.exception("tenant file not read; keeping the last good set")
            return None
        log.info(
            "tenant directory loaded: %d tenants (%d new or changed)",
            len(tenants),
            parsed,
            extra={"tenant_count": len(tenants), "path": str(self.path)},
        )
        return tenants
