"""The e2e tier's cluster: one single-node cluster from real parts for the whole session.

``cluster`` is a :class:`stowage_testing.cluster.Cluster`: ``cluster.kube`` is the
admin API client, ``cluster.kubeconfig`` the admin kubeconfig (for ``helm``),
``cluster.node_ip`` the node's address (NodePort Services answer there, from this
machine), ``cluster.host_ip`` this machine's address on the node's link (a registry
the tests start there is reachable from the node; ``cluster.trust_registry`` lets
containerd pull from it), ``cluster.import_image`` loads an OCI archive into the
node, ``cluster.run_pod`` runs a probe pod to completion. Its pods' sandbox is the
project's pause image (``sandbox_image``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stowage_testing.cluster import Cluster, running_cluster
from stowage_testing.images import built_image


@pytest.fixture(scope="session")
def sandbox_image() -> tuple[Path, str]:
    """The project's pause image (hack/build-image.sh pause): the pods' sandbox."""
    pause = built_image("pause")
    return pause.archive, pause.reference


@pytest.fixture(scope="session")
def cluster(sandbox_image: tuple[Path, str]) -> Iterator[Cluster]:
    """A running single-node cluster, torn down with the session."""
    with running_cluster(sandbox=sandbox_image) as running:
        yield running
