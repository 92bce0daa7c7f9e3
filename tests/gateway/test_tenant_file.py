"""The tenants file: read by a helper process, re-parsed only where it changed.

Gateway processes with tenants whose workers are never called: what the
gateway serves is read from its protected-resource metadata (the tenant's
issuer), what it parsed from its log.
"""

from __future__ import annotations

import datetime
import itertools
import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from gateway._errors import TenantConfigError
from gateway._types import TenantName
from gateway.directory import _tenant_entries, _tenant_file
from gateway.directory._tenant_file import FileTenantSource, TenantFile
from stowage_testing.gateway import (
    GatewayProcess,
    Issuer,
    post,
    rpc,
    running_gateway,
    tenant_entry,
)
from stowage_testing.tools import eventually
from stowage_testing.worker import WorkerProcess


def entry(gateway: GatewayProcess, name: str, issuer: str = "https://login.example.com/") -> Any:
    return {
        "name": name,
        "endpoint": "127.0.0.1:1",
        "auth": {"issuer": issuer, "audience": gateway.url(name)},
        "rateLimits": {"perUser": {"requestsPerMinute": 60}},
        "collections": [{"name": "notes", "schema": {"type": "object"}}],
    }


def write(gateway: GatewayProcess, tenants: list[Any], fmt: str) -> None:
    text = (
        json.dumps({"tenants": tenants}) if fmt == "json" else yaml.safe_dump({"tenants": tenants})
    )
    tmp = gateway.tenants_file.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(gateway.tenants_file)


def issuer_served(gateway: GatewayProcess, tenant: str) -> str | None:
    response = httpx.get(
        f"{gateway.base}/.well-known/oauth-protected-resource/t/{tenant}/mcp", timeout=10
    )
    if response.status_code == 404:
        return None
    issuer: str = response.json()["authorization_servers"][0]
    return issuer


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_a_change_to_one_tenant_of_many_is_served_and_only_it_is_parsed_again(
    tmp_path: Path, fmt: str
) -> None:
    g = GatewayProcess(workdir=tmp_path)
    tenants = [entry(g, f"t{i}") for i in range(300)]
    write(g, tenants, fmt)
    with running_gateway(tmp_path, port=g.port) as gateway:
        assert "tenant directory loaded: 300 tenants (300 new or changed)" in gateway.logs()
        tenants[7] = entry(g, "t7", issuer="https://login.t7.example/")
        write(g, [*tenants, entry(g, "late")], fmt)
        eventually(
            lambda: issuer_served(gateway, "t7") == "https://login.t7.example/",
            what="the changed tenant is served",
        )
        assert issuer_served(gateway, "late") == "https://login.example.com/"
        assert issuer_served(gateway, "t8") == "https://login.example.com/"
        assert "tenant directory loaded: 301 tenants (2 new or changed)" in gateway.logs()


def test_a_file_with_a_name_twice_is_rejected_and_the_last_good_set_is_served(
    tmp_path: Path,
) -> None:
    g = GatewayProcess(workdir=tmp_path)
    write(g, [entry(g, "acme")], "yaml")
    with running_gateway(tmp_path, port=g.port) as gateway:
        write(g, [entry(g, "newco"), entry(g, "newco", issuer="https://other.example/")], "yaml")
        eventually(
            lambda: "tenants[1].name: 'newco' appears twice" in gateway.logs(),
            what="the rejection is logged",
        )
        assert issuer_served(gateway, "acme") == "https://login.example.com/"
        assert issuer_served(gateway, "newco") is None
        write(g, [entry(g, "acme"), {**entry(g, "bad"), "endpoint": "nowhere"}], "yaml")
        eventually(
            lambda: "tenants.bad.endpoint: expected host:port" in gateway.logs(),
            what="an invalid tenant rejects the file",
        )
        assert issuer_served(gateway, "acme") == "https://login.example.com/"
        assert "tenant file rejected; keeping the last good set" in gateway.logs()
        write(g, [entry(g, "acme"), entry(g, "newco")], "yaml")
        eventually(lambda: issuer_served(gateway, "newco") is not None, what="a good edit again")


@pytest.mark.postgres
def test_every_reload_while_tool_calls_are_under_way_is_read(
    tmp_path: Path, issuer: Issuer, worker: WorkerProcess
) -> None:
    # Each reload starts the file's reader while the gateway's gRPC calls to the
    # worker are under way: gRPC's fork handlers crash some of those readers (SIGSEGV,
    # about one in 60 here), and the gateway kept the old set until the file changed
    # again. Now such a reader's file is read again: every reload is served.
    g = GatewayProcess(workdir=tmp_path)
    plenty = {"requestsPerMinute": 600_000, "burst": 10_000}
    acme = tenant_entry(
        "acme", g, issuer, worker.address, rateLimits={"perUser": plenty, "perTenant": plenty}
    )
    write(g, [acme], "yaml")
    with running_gateway(tmp_path, port=g.port) as gateway:
        token = issuer.token(gateway.url("acme"), subject="reloads")
        stop = threading.Event()
        saved: list[bool] = []

        def calls() -> None:
            for i in itertools.count():
                if stop.is_set():
                    return
                args = {"id": f"r{i % 20}", "data": {"i": i}}
                body = post(
                    gateway.url("acme"),
                    rpc("tools/call", {"name": "items_save", "arguments": args}),
                    token,
                )
                saved.append(body.status_code == 200 and not body.json()["result"]["isError"])

        callers = [threading.Thread(target=calls) for _ in range(8)]
        for caller in callers:
            caller.start()
        try:
            for i in range(40):
                write(g, [acme, entry(g, f"extra{i}")], "yaml")
                eventually(
                    lambda i=i: issuer_served(gateway, f"extra{i}") is not None,
                    what=f"reload {i} is served",
                )
        finally:
            stop.set()
            for caller in callers:
                caller.join()
        assert saved and all(saved), f"{saved.count(False)} of {len(saved)} saves failed"
        assert "rejected" not in gateway.logs()


@pytest.mark.anyio
async def test_a_reader_ended_by_a_signal_is_not_a_rejection_and_the_file_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    g = GatewayProcess(workdir=tmp_path)
    write(g, [entry(g, "acme")], "yaml")
    real = _tenant_file._command
    commands: list[list[str]] = []

    def first_one_crashes(path: Path) -> list[str]:
        # The first reader dies as a crashed one does; every later one is the real reader.
        commands.append(["sh", "-c", "kill -SEGV $$"] if not commands else real(path))
        return commands[-1]

    monkeypatch.setattr(_tenant_file, "_command", first_one_crashes)
    published: list[set[TenantName]] = []
    first = anyio.Event()

    def publish(tenants: Mapping[TenantName, object]) -> None:
        published.append(set(tenants))
        first.set()

    source = FileTenantSource(g.tenants_file, interval=0.05)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(source.watch, publish)
        with anyio.fail_after(30):
            await first.wait()
        await anyio.sleep(0.3)  # passes enough to read the file again, were it to be
        tasks.cancel_scope.cancel()
    assert published == [{"acme"}]  # never an empty set, never the file rejected
    assert len(commands) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == [f"tenant file not read; reading it again: {g.tenants_file}: its reader "
                      "was ended by signal 11"]  # fmt: skip


# --- the reader reads YAML exactly as yaml.safe_load does ------------------------------

SPECIAL_YAML = [
    "tenants:\n- &base {name: a, endpoint: 'h:1', auth: {issuer: i, audience: x}}\n- *base\n",
    "base: &b {endpoint: 'h:1', limit: 3}\ntenants:\n- <<: *b\n  name: a\n  limit: 4\n",
    "tenants:\n- name: !!str 123\n  n: !!int '7'\n  f: !!float '1.5'\n  b: yes\n  z: ~\n",
    "tenants:\n- name: a\n  when: 2026-11-23\n  at: 2026-11-23T10:00:00Z\n  octal: 0o17\n",
    "tenants:\n- name: a\n  text: |\n    two\n    lines\n  folded: >\n    one\n    line\n",
    "tenants: {a: {endpoint: 'h:1'}, b: null}\n",
    "tenants:\n- name: a\n  both: {<<: [{x: 1, y: 1}, {y: 2, z: 2}], z: 3}\n",
    "{tenants: [{name: a, flow: [1, 2, {k: v}]}]}\n",
    "",
    "# only a comment\n",
]


@pytest.mark.parametrize("text", SPECIAL_YAML)
def test_the_reader_reads_special_yaml_as_safe_load_does(text: str, tmp_path: Path) -> None:
    path = tmp_path / "tenants.yaml"
    path.write_text(text)
    assert _tenant_entries.read(path) == yaml.safe_load(text)


texts = st.characters(exclude_categories=["Cs"])  # what a UTF-8 file can hold
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(texts, max_size=20)
    | st.dates()
    | st.sampled_from(["yes", "no", "on", "~", "null", "1e3", "0x1F", "2026-01-01", "<<", "*"])
)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(texts, max_size=8), inner),
    max_leaves=30,
)


def test_the_reader_reads_any_yaml_document_as_safe_load_does(tmp_path: Path) -> None:
    set_hypothesis_home_dir(tmp_path / "hypothesis")
    path = tmp_path / "doc.yaml"

    @settings(max_examples=200, deadline=None, database=None)
    @given(doc=documents, flow=st.booleans())
    def same(doc: Any, flow: bool) -> None:
        text = yaml.safe_dump({"tenants": doc}, default_flow_style=flow)
        path.write_text(text)
        assert _tenant_entries.read(path) == yaml.safe_load(text)

    try:
        same()
    finally:
        set_hypothesis_home_dir(None)


def test_the_reader_rejects_a_recursive_document_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tenants.yaml"
    path.write_text("tenants:\n- &a {name: a, loop: [*a]}\n")
    assert _tenant_entries.main([str(path)]) == _tenant_entries.REJECTED
    assert "Circular reference" in capsys.readouterr().err


def test_the_reader_writes_dates_as_text_and_one_digest_per_entry(tmp_path: Path) -> None:
    path = tmp_path / "tenants.yaml"
    path.write_text("tenants:\n- {name: a, endpoint: 'h:1', since: 2026-11-23}\n- {name: b}\n")
    out = tmp_path / "out"
    with out.open("wb") as f:
        _tenant_entries.write_lines(_tenant_entries.read(path), f)
    lines = out.read_bytes().splitlines()
    digests = [line.partition(b" ")[0] for line in lines]
    assert len(set(digests)) == 2 and all(len(d) == 32 for d in digests)
    name, endpoint, instance, spec = json.loads(lines[0].partition(b" ")[2])
    assert (name, endpoint, spec["since"]) == ("a", "h:1", str(datetime.date(2026, 11, 23)))
    assert instance is None


def nested(gateway: GatewayProcess, name: str, instance: str) -> Any:
    """The entry of ``name`` in the nested form: endpoint and instance beside its spec."""
    spec = {k: v for k, v in entry(gateway, name).items() if k not in ("name", "endpoint")}
    return {"name": name, "endpoint": "127.0.0.1:1", "instance": instance, "spec": spec}


def test_a_worker_instance_beside_the_endpoint_is_read_and_a_malformed_one_rejects_the_file(
    tmp_path: Path,
) -> None:
    g = GatewayProcess(workdir=tmp_path)
    write(g, [nested(g, "acme", "run-1"), {**entry(g, "flat"), "instance": "run-2"}], "yaml")
    with running_gateway(tmp_path, port=g.port) as gateway:
        assert issuer_served(gateway, "acme") == "https://login.example.com/"
        assert issuer_served(gateway, "flat") == "https://login.example.com/"
        write(g, [nested(g, "acme", "run-1"), nested(g, "bad", "two words")], "yaml")
        eventually(
            lambda: "tenants.bad.instance: expected 1 to 64 of A-Z a-z 0-9 . _ -" in gateway.logs(),
            what="a malformed instance rejects the file",
        )
        assert issuer_served(gateway, "acme") == "https://login.example.com/"
        assert issuer_served(gateway, "bad") is None


def test_a_component_from_a_configmap_is_refused_by_the_file_naming_the_field(
    tmp_path: Path,
) -> None:
    g = GatewayProcess(workdir=tmp_path)
    bundled = {"configMapKeyRef": {"name": "views", "key": "index.html"}}
    write(g, [{**entry(g, "acme"), "components": [{"name": "v", "htmlFrom": bundled}]}], "yaml")
    with pytest.raises(TenantConfigError) as refused:
        anyio.run(TenantFile(g.tenants_file).read)
    assert str(refused.value) == (
        "tenants.acme.components[0].htmlFrom: a tenants file has no ConfigMaps; "
        "put the component's HTML inline (html)"
    )
