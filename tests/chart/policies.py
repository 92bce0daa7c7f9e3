"""NetworkPolicy semantics (networking.k8s.io/v1), to read what rendered policies admit.

A connection from one endpoint to a port of another is admitted when the
source's egress and the destination's ingress both allow it. For each
direction: an endpoint no policy selects (in that direction) is open; a
selected one is open only to what some rule of some selecting policy names
(peers by pod selector in the policy's namespace, namespace selector, both, or
an ipBlock; ports by number, range or the destination's named container port).
Traffic from the node (the kubelet's probes) is always admitted, as the
Kubernetes documentation says. What a CNI adds beyond the API is not modelled.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Endpoint:
    """A pod (namespace, labels, named container ports, an IP) or an address outside pods."""

    name: str
    namespace: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    ports: Mapping[str, int] = field(default_factory=dict)
    ip: str = "10.244.0.1"
    node: bool = False  # the node itself (the kubelet): always admitted

    @property
    def is_pod(self) -> bool:
        return bool(self.namespace) and not self.node


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector's verdict on ``labels`` (an empty selector selects everything)."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


@dataclass(frozen=True)
class Cluster:
    """The policies in force and the namespaces' labels."""

    policies: Sequence[Mapping[str, Any]]
    namespace_labels: Mapping[str, Mapping[str, str]]

    def labels_of(self, namespace: str) -> dict[str, str]:
        return {NAME_LABEL: namespace, **self.namespace_labels.get(namespace, {})}

    def admits(self, source: Endpoint, destination: Endpoint, port: int | str) -> bool:
        """Whether ``source`` may open a TCP connection to ``port`` of ``destination``."""
        number = destination.ports[port] if isinstance(port, str) else port
        if source.node:
            return True
        return self._open(destination, "Ingress", source, number, destination) and self._open(
            source, "Egress", destination, number, destination
        )

    def _open(
        self, subject: Endpoint, direction: str, peer: Endpoint, port: int, owner: Endpoint
    ) -> bool:
        if not subject.is_pod:
            return True
        selecting = [p for p in self.policies if self._selects(p, subject, direction)]
        if not selecting:
            return True
        key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        for policy in selecting:
            namespace = policy["metadata"]["namespace"]
            for rule in policy["spec"].get(key) or []:
                peers = rule.get(peers_key)
                if peers and not any(self._peer(p, namespace, peer) for p in peers):
                    continue
                if _ports(rule.get("ports"), port, owner):
                    return True
        return False

    def _selects(self, policy: Mapping[str, Any], pod: Endpoint, direction: str) -> bool:
        spec = policy["spec"]
        types = spec.get("policyTypes") or (["Ingress"] + (["Egress"] if "egress" in spec else []))
        return (
            direction in types
            and policy["metadata"]["namespace"] == pod.namespace
            and selects(spec.get("podSelector"), pod.labels)
        )

    def _peer(self, peer: Mapping[str, Any], namespace: str, other: Endpoint) -> bool:
        if "ipBlock" in peer:
            block = peer["ipBlock"]
            address = ipaddress.ip_address(other.ip)
            return address in ipaddress.ip_network(block["cidr"]) and not any(
                address in ipaddress.ip_network(e) for e in block.get("except") or []
            )
        if not other.is_pod:
            return False
        if "namespaceSelector" in peer:
            if not selects(peer["namespaceSelector"], self.labels_of(other.namespace)):
                return False
        elif other.namespace != namespace:
            return False
        return selects(peer.get("podSelector"), other.labels)


def _ports(ports: Iterable[Mapping[str, Any]] | None, number: int, owner: Endpoint) -> bool:
    ports = list(ports or [])
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != "TCP":
            continue
        wanted = entry.get("port")
        if wanted is None:
            return True
        if isinstance(wanted, str):
            if owner.ports.get(wanted) == number:
                return True
            continue
        if wanted <= number <= entry.get("endPort", wanted):
            return True
    return False


def table(
    rows: Sequence[str], columns: Sequence[str], cells: Mapping[tuple[str, str], bool]
) -> str:
    """The matrix as text: one row per peer, ``yes`` / ``-`` per port."""
    width = max(len(r) for r in rows)
    widths = [max(len(c), 3) for c in columns]
    lines = [
        " " * width + " | " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    ]
    lines.append("-" * len(lines[0]))
    for r in rows:
        marks = ("yes" if cells[(r, c)] else "-" for c in columns)
        lines.append(
            r.ljust(width)
            + " | "
            + " | ".join(m.ljust(w) for m, w in zip(marks, widths, strict=True))
        )
    return "\n".join(lines)
