"""Adapter: the Kubernetes API through kubernetes_asyncio. ApiException becomes KubeError.

Objects are written with server-side apply (field manager ``stowage-operator``,
forced), so applying the desired state every cycle both creates what is
missing and reverts hand edits of the fields the operator owns.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from stowage.crd import (
    API_VERSION,
    REGION_PLURAL,
    TENANT_KIND,
    TENANT_PLURAL,
    collection_path,
)
from stowage_operator._errors import APIConflictError, APIGoneError, APINotFoundError, KubeError
from stowage_operator._types import Body

FIELD_MANAGER = "stowage-operator"

#: (apiVersion, kind) -> (path prefix, plural). Only what the operator touches.
_KINDS: dict[tuple[str, str], tuple[str, str]] = {
    ("v1", "Secret"): ("/api/v1", "secrets"),
    ("v1", "ConfigMap"): ("/api/v1", "configmaps"),
    ("v1", "Service"): ("/api/v1", "services"),
    ("apps/v1", "Deployment"): ("/apis/apps/v1", "deployments"),
    ("networking.k8s.io/v1", "NetworkPolicy"): ("/apis/networking.k8s.io/v1", "networkpolicies"),
    ("policy/v1", "PodDisruptionBudget"): ("/apis/policy/v1", "poddisruptionbudgets"),
    ("batch/v1", "CronJob"): ("/apis/batch/v1", "cronjobs"),
    ("batch/v1", "Job"): ("/apis/batch/v1", "jobs"),
    ("v1", "Pod"): ("/api/v1", "pods"),
    (API_VERSION, TENANT_KIND): (f"/apis/{API_VERSION}", TENANT_PLURAL),
}
_RESPONSES = {200: "object", 201: "object"}


async def configure(kubeconfig: Path | None) -> client.Configuration:
    """Client configuration from a kubeconfig file, or the in-cluster service account."""
    configuration = client.Configuration()
    if kubeconfig is None:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        await config.load_kube_config(
            config_file=str(kubeconfig), client_configuration=configuration
        )
    return configuration


def decoded(secret: Mapping[str, Any]) -> dict[str, str]:
    """A Secret's ``data``, decoded."""
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def _error(e: ApiException, what: str) -> KubeError:
    """The operator's own error for an API failure, typed for the statuses callers handle."""
    kind = {404: APINotFoundError, 409: APIConflictError, 410: APIGoneError}.get(
        e.status or 0, KubeError
    )
    return kind(f"{what}: HTTP {e.status} {e.reason}", status=e.status)


class Kube:
    """The few Kubernetes operations the operator needs."""

    def __init__(self, configuration: client.Configuration) -> None:
        self._api = client.ApiClient(configuration)

    async def close(self) -> None:
        await self._api.close()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        try:
            return await self._api.call_api(
                path,
                method,
                query_params=query or [],
                header_params={"Content-Type": content_type, "Accept": "application/json"},
                body=body,
                response_types_map=_RESPONSES,
                auth_settings=["BearerToken"],
                _return_http_data_only=True,
            )
        except ApiException as e:
            raise _error(e, f"{method} {path}") from e

    @staticmethod
    def _path(api_version: str, kind: str, namespace: str | None, name: str | None) -> str:
        prefix, plural = _KINDS[(api_version, kind)]
        path = prefix
        if namespace is not None:
            path += f"/namespaces/{namespace}"
        path += f"/{plural}"
        if name is not None:
            path += f"/{name}"
        return path

    async def list_everywhere(
        self, api_version: str, kind: str, label_selector: str, namespace: str | None = None
    ) -> tuple[list[Body], str]:
        """The objects of a kind in every namespace (or in ``namespace``) that match a label
        selector, and the list's resource version (where a watch of the same objects starts)."""
        found = await self._call(
            "GET",
            self._path(api_version, kind, namespace, None),
            query=[("labelSelector", label_selector)],
        )
        version = str((found.get("metadata") or {}).get("resourceVersion") or "")
        return list(found.get("items") or []), version

    async def watch_everywhere(
        self,
        api_version: str,
        kind: str,
        label_selector: str,
        resource_version: str,
        timeout_seconds: int,
        namespace: str | None = None,
    ) -> AsyncIterator[tuple[str, Body]]:
        """The changes (``ADDED``, ``MODIFIED``, ``DELETED``, ``BOOKMARK``) to the objects of
        a kind in every namespace (or in ``namespace``) that match a label selector, after
        ``resource_version``.

        Ends when the server closes the stream (after ``timeout_seconds``); a version
        too old to resume from raises ``APIGoneError``: list again, then watch.
        """
        path = self._path(api_version, kind, namespace, None)
        query = [
            ("watch", "true"),
            ("labelSelector", label_selector),
            ("resourceVersion", resource_version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(timeout_seconds)),
        ]
        try:
            response = await self._api.call_api(
                path,
                "GET",
                query_params=query,
                header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=timeout_seconds + 30,
            )
        except ApiException as e:
            raise _error(e, f"watch {path}") from e
        try:
            while line := await response.content.readline():
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    code = int(status.get("code") or 0)
                    kind_of = APIGoneError if code == 410 else KubeError
                    raise kind_of(f"watch {path}: HTTP {code} {status.get('reason')}", status=code)
                yield str(event.get("type")), event.get("object") or {}
        finally:
            response.close()

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> Body | None:
        try:
            found: Body = await self._call("GET", self._path(api_version, kind, namespace, name))
        except APINotFoundError:
            return None
        return found

    async def list(
        self, api_version: str, kind: str, namespace: str, label_selector: str
    ) -> list[Body]:
        """The objects of a kind in a namespace that match a label selector."""
        found = await self._call(
            "GET",
            self._path(api_version, kind, namespace, None),
            query=[("labelSelector", label_selector)],
        )
        return list(found.get("items") or [])

    async def apply(self, obj: Mapping[str, Any]) -> Body:
        """Server-side apply; creates or updates, reverting hand edits of owned fields."""
        meta = obj["metadata"]
        path = self._path(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])
        stored: Body = await self._call(
            "PATCH",
            path,
            body=dict(obj),
            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            content_type="application/apply-patch+yaml",
        )
        return stored

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        """Delete with foreground propagation; False when it was already gone."""
        try:
            await self._call(
                "DELETE",
                self._path(api_version, kind, namespace, name),
                body={"propagationPolicy": "Background"},
            )
        except APINotFoundError:
            return False
        return True

    async def get_region(self, name: str) -> Body | None:
        try:
            found: Body = await self._call("GET", f"{collection_path(REGION_PLURAL)}/{name}")
        except APINotFoundError:
            return None
        return found

    async def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """A Secret's decoded data, or None when there is no such Secret."""
        found = await self.get("v1", "Secret", namespace, name)
        return None if found is None else decoded(found)

    async def patch_tenant_status(
        self, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        path = self._path(API_VERSION, TENANT_KIND, namespace, name) + "/status"
        with contextlib.suppress(APINotFoundError):  # the Tenant is gone: nothing to report
            await self._call(
                "PATCH",
                path,
                body={"status": dict(status)},
                content_type="application/merge-patch+json",
            )

    async def patch_region_status(self, name: str, status: Mapping[str, Any]) -> None:
        with contextlib.suppress(APINotFoundError):  # the Region is gone: nothing to report
            await self._call(
                "PATCH",
                f"{collection_path(REGION_PLURAL)}/{name}/status",
                body={"status": dict(status)},
                content_type="application/merge-patch+json",
            )
