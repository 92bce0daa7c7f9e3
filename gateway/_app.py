"""The gateway's ASGI app: routes, lifespan, and the wiring of its parts."""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import ssl
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.exposition import choose_encoder
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway._metrics import Metrics
from gateway._ratelimit import LocalRateLimiter, RateLimiter, RedisRateLimiter
from gateway._settings import GatewaySettings
from gateway._types import READ_SCOPE, WRITE_SCOPE, Tenant, TenantName
from gateway.auth._auth import TokenVerifier
from gateway.auth._introspection import Introspector
from gateway.auth._jwks import JwksCache
from gateway.auth._revocation_bus import RedisRevocationBus
from gateway.auth._revocations import Revocations
from gateway.directory._directory import TenantDirectory, TenantSource
from gateway.directory._tenant_file import FileTenantSource
from gateway.files import FileEndpoint, LinkCors, Links, SigningKeys
from gateway.forwarding._worker import WorkerPool
from gateway.gate._gate import McpGate, build_gate
from gateway.surface._calls import ToolCalls
from gateway.surface._lane import ToolCallLane
from gateway.surface._mcp import build_server, build_session_manager, transport_security
from gateway.surface._tools import Catalogues
from stowage import tracing

log = logging.getLogger(__name__)

_LOOPBACK_ORIGINS = r"https?://(localhost|127\.0\.0\.1|\[::1\])(:\d+)?"


@dataclass(frozen=True)
class _Parts:
    """The gateway's long-lived services, built once per app."""

    settings: GatewaySettings
    metrics: Metrics
    directory: TenantDirectory
    workers: WorkerPool
    catalogues: Catalogues
    revocations: Revocations
    calls: ToolCalls
    http: httpx.AsyncClient
    verifier: TokenVerifier
    limiter: RateLimiter
    bus: RedisRevocationBus | None
    #: Files: the tenants' signing keys (derived from the keys directory's master keys).
    keys: SigningKeys


def issuer_trust(ca_file: Path | None) -> ssl.SSLContext | bool:
    """What the issuers' HTTPS is verified against: the public roots (httpx's default),
    plus the private CAs of ``ca_file`` (``--issuer-ca-file``) when given."""
    if ca_file is None:
        return True
    context = httpx.create_ssl_context()
    context.load_verify_locations(cafile=str(ca_file))
    return context


def _parts(settings: GatewaySettings) -> _Parts:
    metrics = Metrics(settings.metrics_dir)
    workers = WorkerPool(timeout=settings.call_timeout)
    bus = RedisRevocationBus(settings.redis_url) if settings.redis_url else None
    revocations = Revocations(workers, bus=bus, max_entries=settings.revocation_cache_size)
    http = httpx.AsyncClient(verify=issuer_trust(settings.issuer_ca_file))
    verifier = TokenVerifier(
        JwksCache(http, min_refresh_interval=settings.jwks_min_refresh),
        leeway=settings.token_leeway,
        introspector=Introspector(http, secrets_dir=settings.secrets_dir),
        introspection_seconds=settings.introspection_cache_seconds,
    )
    limiter: RateLimiter = (
        RedisRateLimiter(settings.redis_url) if settings.redis_url else LocalRateLimiter()
    )
    keys = SigningKeys(settings.files_keys_dir, settings.file_link_seconds)
    return _Parts(
        settings=settings,
        metrics=metrics,
        directory=TenantDirectory(),
        workers=workers,
        catalogues=Catalogues(),
        revocations=revocations,
        calls=ToolCalls(
            workers,
            metrics,
            revocations,
            user_cache_size=settings.user_cache_size,
            links=Links(keys, settings.file_link_seconds).of,
        ),
        http=http,
        verifier=verifier,
        limiter=limiter,
        bus=bus,
        keys=keys,
    )


def _gate(parts: _Parts) -> tuple[McpGate, StreamableHTTPSessionManager]:
    """The per-tenant endpoint: the gate, its tool-call lane and the SDK's transport behind."""
    settings = parts.settings
    origins = [*settings.allowed_origins, "http://127.0.0.1:*", "http://localhost:*"]
    security = transport_security(
        allowed_hosts=settings.effective_allowed_hosts(), allowed_origins=origins
    )
    manager = build_session_manager(
        build_server(parts.calls, parts.catalogues),
        security=security,
        max_body_bytes=settings.max_body_bytes,
    )
    gate = build_gate(
        settings=settings,
        directory=parts.directory,
        verifier=parts.verifier,
        limiter=parts.limiter,
        catalogues=parts.catalogues,
        metrics=parts.metrics,
        inner=manager.handle_request,
        lane=ToolCallLane(parts.calls, parts.catalogues, security),
        revocations=parts.revocations,
    )
    return gate, manager


def _lifespan(
    parts: _Parts, source: TenantSource, manager: StreamableHTTPSessionManager
) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    """Tenants from ``source``, channels to their workers, revocations kept in sync."""
    directory, workers, revocations = parts.directory, parts.workers, parts.revocations

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        endpoints_out, endpoints_in = anyio.create_memory_object_stream[set[str]](math.inf)

        def publish(tenants: Mapping[TenantName, Tenant]) -> None:
            workers.expect(tenants.values())  # before any request sees the new set
            directory.publish(tenants)
            endpoints_out.send_nowait({t.endpoint for t in tenants.values()})

        async def close_unused_channels() -> None:
            async for endpoints in endpoints_in:
                await workers.retain(endpoints)

        async def catch_up() -> None:
            await revocations.sync(directory.all())

        async def keep_revocations_in_sync() -> None:
            while True:
                await anyio.sleep(parts.settings.revocation_sync_interval)
                await catch_up()

        async def freeze_what_start_made() -> None:
            # The modules, models and first tenants live as long as the process. Out of
            # the collector's sight, its full passes no longer walk them: each such pass
            # held every request for about 100 ms.
            await directory.wait_loaded()
            gc.freeze()

        async with manager.run(), anyio.create_task_group() as tg:
            tg.start_soon(source.watch, publish)
            tg.start_soon(close_unused_channels)
            tg.start_soon(keep_revocations_in_sync)
            tg.start_soon(freeze_what_start_made)
            if parts.bus is not None:
                tg.start_soon(parts.bus.listen, revocations.pushed, catch_up)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()
        with anyio.CancelScope(shield=True):
            endpoints_out.close()
            endpoints_in.close()
            await _close(parts)

    return lifespan


async def _close(parts: _Parts) -> None:
    await parts.workers.close()
    await parts.limiter.aclose()
    if parts.bus is not None:
        await parts.bus.aclose()
    await parts.http.aclose()


def _routes(parts: _Parts, gate: McpGate) -> list[BaseRoute]:
    """The tenant endpoints, their OAuth metadata, health, readiness and metrics."""
    directory, metrics = parts.directory, parts.metrics

    async def protected_resource(request: Request) -> Response:
        tenant = directory.get(request.path_params["tenant"])
        if tenant is None:
            return JSONResponse({"error": "not_found"}, status_code=404)
        return JSONResponse(
            {
                "resource": tenant.auth.audience,
                "authorization_servers": [tenant.auth.issuer],
                "scopes_supported": [READ_SCOPE, WRITE_SCOPE],
                "bearer_methods_supported": ["header"],
                "resource_name": f"Stowage ({tenant.name})",
            },
            headers={"cache-control": "public, max-age=300"},
        )

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        if not directory.loaded:
            return JSONResponse({"status": "loading tenants"}, status_code=503)
        return JSONResponse({"status": "ready", "tenants": len(directory.all())})

    async def metrics_endpoint(request: Request) -> Response:
        if tracing.enabled():
            # OpenMetrics when the scraper asks for it: the only format with exemplars.
            encode, media_type = choose_encoder(request.headers.get("accept", ""))
            return Response(encode(metrics.registry), media_type=media_type)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    files = FileEndpoint(directory, parts.workers, parts.keys, parts.limiter)
    return [
        Route("/t/{tenant}/mcp", endpoint=gate, methods=["GET", "POST", "DELETE"]),
        Route("/t/{tenant}/files/{file}", endpoint=files, methods=["GET", "PUT"]),
        Route(
            "/.well-known/oauth-protected-resource/t/{tenant}/mcp",
            endpoint=protected_resource,
            methods=["GET"],
        ),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]


def _cors(settings: GatewaySettings) -> Middleware:
    """Browser clients (the MCP Inspector, web apps) from the allowed origins and loopback."""
    return Middleware(
        CORSMiddleware,
        allow_origins=list(settings.allowed_origins),
        allow_origin_regex=_LOOPBACK_ORIGINS,
        allow_methods=["GET", "POST", "DELETE", "OPTIONS", "PUT", "HEAD"],
        allow_headers=[
            "authorization",
            "content-type",
            "mcp-protocol-version",
            "mcp-session-id",
            "last-event-id",
            "x-request-id",
            "range",
        ],
        expose_headers=[
            "www-authenticate",
            "mcp-session-id",
            "x-request-id",
            "retry-after",
            "content-range",
            "content-length",
            "etag",
        ],
    )


def create_app(
    settings: GatewaySettings,
    source: TenantSource | None = None,
    *,
    extra_routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """The gateway app; tenants come from ``source`` or else the settings' tenants file.

    ``extra_routes`` are served beside the gateway's own, e.g. the development
    authorization server that ``stowage dev`` mounts; the gateway knows nothing
    of them.
    """
    if source is None:
        if settings.tenants_file is None:
            raise ValueError("a tenants file (or another tenant source) is required")
        source = FileTenantSource(settings.tenants_file, settings.reload_interval)
    parts = _parts(settings)
    gate, manager = _gate(parts)
    app = Starlette(
        routes=[*_routes(parts, gate), *extra_routes],
        # Links first: a component on any origin may use them (gateway.files._cors).
        middleware=[Middleware(LinkCors), _cors(settings)],
        lifespan=_lifespan(parts, source, manager),
    )
    app.state.metrics = parts.metrics
    app.state.directory = parts.directory
    return app
