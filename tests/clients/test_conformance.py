"""The official MCP conformance suite's server scenarios against a real gateway.

The suite cannot send a bearer token, so it talks to the gateway through a
header-adding reverse proxy (``tests.clients.proxy``), never through an
unauthenticated path. Every scenario the suite runs is either expected to pass
or listed as not applicable with the reason; a new scenario after a version
bump, or a regression in an applicable one, fails the test.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from stowage_testing.gateway import GatewayProcess, Issuer
from tests.clients.proxy import token_proxy
from tests.clients.tools import NodeTools

pytestmark = [pytest.mark.postgres]

#: Scenarios the gateway must pass.
APPLICABLE = {
    "server-initialize": "initialize handshake: server info and capabilities",
    "ping": "ping answers an empty result",
    "tools-list": "tools/list with valid tool definitions",
    "dns-rebinding-protection": "a foreign Host/Origin is refused (4xx), a loopback one accepted",
    "resources-list": "resources/list lists the tenant's components (MCP Apps views)",
}

#: Capabilities the platform does not offer: the gateway must answer "Method not found".
NOT_OFFERED = {
    "logging-set-level": "no logging capability (the gateway logs server-side, per call)",
    "completion-complete": "no completions capability (no prompts or resource templates)",
    "tools-call-with-logging": "no logging capability (tool calls send no log notifications)",
    "resources-subscribe": "no subscriptions: a changed component is a new ui:// URI",
    "resources-unsubscribe": "no subscriptions: a changed component is a new ui:// URI",
    "prompts-list": "no prompts",
    "prompts-get-simple": "no prompts",
    "prompts-get-with-args": "no prompts",
    "prompts-get-embedded-resource": "no prompts",
    "prompts-get-with-image": "no prompts",
}

#: Scenarios that call the suite's own fixture tools (test_simple_text, test_image_content, …),
#: which a tenant's connector does not have (its tools are the storage tools), or need a
#: server that calls back into the client. Their outcome says nothing about the gateway
#: (two "pass" only because an unknown tool answers with a text error), so none is asserted.
NEEDS_FIXTURE_TOOLS = {
    "resources-read-text": "needs the suite's test://static-text resource (the gateway serves "
    "only the tenant's ui:// components; reading one is tested with the Inspector)",
    "resources-read-binary": "needs the suite's test://static-binary resource",
    "resources-templates-read": "needs the suite's test://template/{id} template (none here)",
    "tools-call-simple-text": "needs the suite's test_simple_text tool",
    "tools-call-image": "needs the suite's test_image_content tool (no image results)",
    "tools-call-audio": "needs the suite's test_audio_content tool (no audio results)",
    "tools-call-embedded-resource": "needs the suite's test_embedded_resource tool",
    "tools-call-mixed-content": "needs the suite's test_multiple_content_types tool",
    "tools-call-error": "needs the suite's test_error_handling tool",
    "tools-call-with-progress": "needs the suite's test_tool_with_progress tool",
    "tools-call-sampling": "sampling: the stateless gateway never calls back into the client",
    "tools-call-elicitation": "elicitation: the gateway never asks the user through the client",
    "elicitation-sep1034-defaults": "elicitation: the gateway never asks the user",
    "elicitation-sep1330-enums": "elicitation: the gateway never asks the user",
    "server-sse-multiple-streams": "needs sessions and server-sent event streams; the gateway "
    "is stateless with JSON responses (GET is 405)",
}

NOT_APPLICABLE = {**NOT_OFFERED, **NEEDS_FIXTURE_TOOLS}


@dataclass(frozen=True)
class Outcome:
    passed: bool
    checks: list[dict[str, object]]

    @property
    def messages(self) -> str:
        return "; ".join(
            str(c.get("errorMessage") or c["status"])
            for c in self.checks
            if c["status"] != "SUCCESS"
        )


def outcomes(output: Path) -> dict[str, Outcome]:
    """Each scenario's checks, from the suite's ``server-<scenario>-<time>/checks.json``."""
    found: dict[str, Outcome] = {}
    for checks_file in output.glob("server-*/checks.json"):
        scenario = re.sub(r"-\d{4}-\d{2}-\d{2}T[\d-]+Z$", "", checks_file.parent.name)
        scenario = scenario.removeprefix("server-")
        checks = json.loads(checks_file.read_text())
        passed = bool(checks) and all(c["status"] == "SUCCESS" for c in checks)
        found[scenario] = Outcome(passed, checks)
    return found


def table(results: dict[str, Outcome]) -> str:
    rows = []
    for scenario in sorted(results, key=lambda s: (s not in APPLICABLE, s)):
        outcome = results[scenario]
        if scenario in APPLICABLE:
            verdict = "PASS" if outcome.passed else f"FAIL  {outcome.messages}"
        elif scenario in NOT_APPLICABLE:
            raw = "passed" if outcome.passed else outcome.messages or "no checks"
            verdict = f"N/A   {NOT_APPLICABLE[scenario]} (suite: {raw[:80]})"
        else:
            verdict = "NEW   not classified: decide whether it applies"
        rows.append(f"{scenario:<32} {verdict}")
    return "\n".join(rows)


def test_the_conformance_suite_passes_every_applicable_server_scenario(
    node_tools: NodeTools, gateway: GatewayProcess, issuer: Issuer, tmp_path: Path
) -> None:
    token = issuer.token(gateway.url("acme"), subject="conformance")
    output = tmp_path / "results"
    with token_proxy(gateway.base, token) as proxy:
        ran = node_tools.run(
            "conformance", "server", "--url", proxy.url("/t/acme/mcp"), "-o", str(output),
            timeout=300,
        )  # fmt: skip
    results = outcomes(output)
    report = table(results)
    print(f"\nconformance {ran.args[-4:]}\n{report}")
    assert results, ran
    assert set(results) == set(APPLICABLE) | set(NOT_APPLICABLE), report
    assert [s for s in APPLICABLE if not results[s].passed] == [], report
    # Capabilities the gateway does not offer are refused as JSON-RPC "Method not found".
    wrong = {
        s: results[s].messages for s in NOT_OFFERED if "Method not found" not in results[s].messages
    }
    assert wrong == {}, report
