"""The spaces rows of ``make bench``: what a shared space costs beside personal objects.

Two pairs of rounds, alternating so that drift on a shared machine falls on both:

- save+get of personal ``items`` beside save+get of a shared collection's objects
  (``board_save``/``board_get``) in spaces of their own, one space per object, and in one
  space that every connection writes to. The worker checks the caller's membership and
  role in the same transaction as each write and read; in spaces of their own the CPU per
  call of the worker and PostgreSQL shows what that check costs, as personal objects
  contend only on their own rows. In one space every write also waits for the others:
  the space's row numbers its changes in commit order (the change feed), so its writes
  are serialised, which is what a busy shared board costs;
- the first page of ``board_list`` (10 objects, so both answers hold the same number;
  the large space's adds a cursor) in a space of 10 objects beside one of 10,000: the
  page comes from the (space, collection, object id) key, so it should cost the same.

The spaces and the listed objects are made through the worker's own gRPC API
(``CreateSpace``, ``PutSpaceObject``) as the bench user, before any round.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import grpc

from stowage.v1 import worker_pb2 as pb
from stowage.v1 import worker_pb2_grpc
from stowage.wire import TENANT_KEY, USER_ID_KEY

#: The shared collection the bench tenant declares (its objects live in spaces).
SHARED = {"name": "board", "shared": True}
SMALL, LARGE = 10, 10_000
#: Puts in flight while seeding a space.
_SEEDING = 32


def _stub(channel: grpc.Channel | grpc.aio.Channel) -> Any:
    return worker_pb2_grpc.TenantWorkerStub(channel)  # type: ignore[no-untyped-call]


class Spaces:
    """The bench user's spaces, made through the worker's gRPC API."""

    def __init__(self, address: str, tenant: str, issuer: str, subject: str) -> None:
        self.address, self.tenant = address, tenant
        with grpc.insecure_channel(address) as channel:
            reply = _stub(channel).ResolveUser(
                pb.ResolveUserRequest(issuer=issuer, subject=subject),
                metadata=[(TENANT_KEY, tenant)],
                timeout=30,
            )
        self.user = reply.user_id

    def _metadata(self) -> list[tuple[str, str]]:
        return [(TENANT_KEY, self.tenant), (USER_ID_KEY, self.user)]

    def create(self, name: str, objects: int = 0) -> str:
        """A new space holding ``objects`` objects of the shared collection; its id."""
        with grpc.insecure_channel(self.address) as channel:
            stub = _stub(channel)
            space = stub.CreateSpace(
                pb.CreateSpaceRequest(name=name), metadata=self._metadata(), timeout=30
            ).id
        if objects:
            asyncio.run(self._seed(space, objects))
        return str(space)

    async def _seed(self, space: str, objects: int) -> None:
        async with grpc.aio.insecure_channel(self.address) as channel:
            stub = _stub(channel)
            slots = asyncio.Semaphore(_SEEDING)

            async def put(i: int) -> None:
                data = json.dumps({"n": i, "text": "hello world"}).encode()
                request = pb.PutSpaceObjectRequest(
                    space=space, collection=str(SHARED["name"]), id=f"seed-{i:06d}", data_json=data
                )
                async with slots:
                    await stub.PutSpaceObject(request, metadata=self._metadata(), timeout=60)

            await asyncio.gather(*(put(i) for i in range(objects)))


#: ``measure(target, url, concurrency, seconds, groups, token, **wrk)``: one round.
Measure = Callable[..., Any]


def spaces_rounds(
    measure: Measure,
    spaces: Spaces,
    target: str,
    url: str,
    concurrency: int,
    seconds: float,
    groups: dict[str, list[int]],
    token: str,
    repeats: int = 2,
) -> list[Any]:
    """Personal save+get beside save+get in a space; a small space's first page beside a
    large one's. Each pair alternates ``repeats`` times."""
    print(f"  seeding spaces of {SMALL} and {LARGE} objects ...", flush=True)
    shared = spaces.create("bench save+get")
    # One space per object the connections write (wrk spreads them over at most
    # concurrency + 1 objects: bench/tool_calls.lua, BENCH_OBJECTS).
    own = ",".join(spaces.create(f"bench own {i}") for i in range(concurrency + 1))
    small, large = spaces.create("bench small", SMALL), spaces.create("bench large", LARGE)
    collection = str(SHARED["name"])
    rounds = []
    for _ in range(repeats):
        pairs = (("personal", ""), ("in spaces of their own", own), ("in one space", shared))
        for label, space in pairs:
            print(f"  save+get {label}, {concurrency} connections, {seconds}s", flush=True)
            rounds.append(
                measure(f"{target} save+get {label}", url, concurrency, seconds, groups, token,
                        space=space, collection=collection if space else "items")
            )  # fmt: skip
        for size, space in ((SMALL, small), (LARGE, large)):
            print(f"  first page, space of {size}, {concurrency} connections", flush=True)
            rounds.append(
                measure(f"{target} list first page, space of {size}", url, concurrency, seconds,
                        groups, token, space=space, collection=collection, lists=True)
            )  # fmt: skip
    return rounds
