"""One configuration reader: flag over variable over default, alike in every component."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from stowage_operator import _settings as operator_settings
from stowage_operator._settings import OperatorSettings

from gateway import _access_cli as access_cli
from gateway import _settings as gateway_settings
from gateway._access_cli import AccessSettings
from gateway._settings import GatewaySettings
from stowage.cli import build_parser, main
from stowage.runtime import config
from stowage_dev import _cli as dev_cli
from stowage_dev._cli import DevSettings
from tenant_worker import _settings as worker_settings
from tenant_worker._settings import WorkerSettings

#: Each component: its command line, settings class and declarations.
COMPONENTS = {
    "gateway": (("gateway", "serve"), GatewaySettings, gateway_settings.SETTINGS),
    "worker": (("worker", "serve"), WorkerSettings, worker_settings.SETTINGS),
    "operator": (("operator",), OperatorSettings, operator_settings.SETTINGS),
}


def settings_of(component: str, argv: list[str], env: Mapping[str, str]) -> Any:
    """What the component's entry point builds from this command line and environment."""
    command, cls, declared = COMPONENTS[component]
    args = build_parser(command[0]).parse_args([*command, *argv])
    return cls.from_env(env, **config.flags(args, declared))


def help_text(command: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as done:
        build_parser(command[0]).parse_args([*command, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


def test_a_flag_beats_its_variable_which_beats_the_default() -> None:
    env = {"STOWAGE_GATEWAY_CALL_TIMEOUT": "7", "STOWAGE_GATEWAY_RELOAD_INTERVAL": "0.5"}
    settings = settings_of("gateway", ["--call-timeout", "3"], env)
    assert settings.call_timeout == 3.0
    assert settings.reload_interval == 0.5
    assert settings.jwks_min_refresh == GatewaySettings().jwks_min_refresh

    worker = settings_of("worker", ["--purge-interval", "5"], {
        "STOWAGE_DATABASE_URL": "sqlite+aiosqlite:///w.db",
        "STOWAGE_PURGE_INTERVAL": "9",
        "STOWAGE_DB_POOL_SIZE": "4",
    })  # fmt: skip
    assert (worker.purge_interval, worker.db_pool_size, worker.tenant) == (5.0, 4, "default")

    operator = settings_of(
        "operator", ["--no-run-migrations"], {"STOWAGE_OPERATOR_RUN_MIGRATIONS": "true"}
    )
    assert operator.run_migrations is False


def test_an_empty_variable_counts_as_unset() -> None:
    gateway = settings_of("gateway", [], {"STOWAGE_GATEWAY_CALL_TIMEOUT": ""})
    assert gateway.call_timeout == GatewaySettings().call_timeout

    # What the chart renders for an operator that watches every namespace.
    operator = settings_of("operator", [], {
        "STOWAGE_OPERATOR_NAMESPACES": "",
        "STOWAGE_OPERATOR_GATEWAY_SELECTOR": "",
        "STOWAGE_KUBECONFIG": "",
        "KUBECONFIG": "/etc/k",
    })  # fmt: skip
    assert operator.namespaces == ()
    assert operator.gateway_selector == OperatorSettings().gateway_selector
    # An empty first variable passes on to its fallback.
    assert operator.kubeconfig == Path("/etc/k")

    worker = settings_of("worker", [], {"STOWAGE_DATABASE_URL": "x", "STOWAGE_TENANT": ""})
    assert worker.tenant == "default"


def test_an_unreadable_variable_stops_the_command_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STOWAGE_GATEWAY_CALL_TIMEOUT", "soon")
    with pytest.raises(SystemExit) as done:
        main(["gateway", "serve", "--tenants-file", "/nonexistent.yaml"])
    assert done.value.code == 2
    assert (
        "stowage gateway: $STOWAGE_GATEWAY_CALL_TIMEOUT: 'soon' is not a number"
        in capsys.readouterr().err
    )


def test_an_unreadable_flag_is_a_usage_error_naming_the_flag(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as done:
        build_parser("worker").parse_args(["worker", "serve", "--processes", "0"])
    assert done.value.code == 2
    assert "argument --processes: '0' is less than 1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("component", "env", "message"),
    [
        ("gateway", {"STOWAGE_GATEWAY_TENANTS_FROM": "etcd"}, "'etcd' is not one of file, "),
        ("gateway", {"STOWAGE_GATEWAY_ALLOWED_HOSTS": "a,b"} | {"STOWAGE_GATEWAY_PORT": "80a"},
         "$STOWAGE_GATEWAY_PORT: '80a' is not a whole number"),
        ("operator", {"STOWAGE_OPERATOR_RUN_MIGRATIONS": "maybe"},
         "$STOWAGE_OPERATOR_RUN_MIGRATIONS: 'maybe' is not true or false"),
        # An empty selector would let every pod reach the workers.
        ("operator", {"STOWAGE_OPERATOR_GATEWAY_SELECTOR": ","},
         "$STOWAGE_OPERATOR_GATEWAY_SELECTOR: not a label selector"),
        ("worker", {"STOWAGE_DATABASE_URL": "x", "STOWAGE_WORKER_PROCESSES": "0"},
         "$STOWAGE_WORKER_PROCESSES: '0' is less than 1"),
        ("worker", {"STOWAGE_DATABASE_URL": "x", "STOWAGE_IDEMPOTENCY_TTL": "inf"},
         "$STOWAGE_IDEMPOTENCY_TTL: 'inf' is not a finite number"),
        # Below the gateway's batches of calls: the worker would refuse the stream's messages.
        ("worker", {"STOWAGE_DATABASE_URL": "x", "STOWAGE_WORKER_MAX_MESSAGE_BYTES": "65536"},
         "$STOWAGE_WORKER_MAX_MESSAGE_BYTES: '65536' is less than 2097152"),
    ],
)  # fmt: skip
def test_a_variable_that_does_not_read_is_an_error_naming_it(
    component: str, env: dict[str, str], message: str
) -> None:
    with pytest.raises(config.ConfigError) as refused:
        settings_of(component, [], env)
    assert message in str(refused.value)


def test_a_missing_required_setting_names_its_flag_and_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("STOWAGE_DATABASE_URL", raising=False)
    with pytest.raises(SystemExit) as done:
        main(["worker", "migrate"])
    assert done.value.code == 2
    assert (
        "database url is required: --database-url / $STOWAGE_DATABASE_URL"
        in capsys.readouterr().err
    )


@pytest.mark.parametrize("component", sorted(COMPONENTS))
def test_every_setting_is_declared_and_in_help_with_its_variable(
    component: str, capsys: pytest.CaptureFixture[str]
) -> None:
    command, cls, declared = COMPONENTS[component]
    fields = {f.name for f in dataclasses.fields(cls)}
    assert fields <= {s.field for s in declared}, "a settings field without a variable"

    text = help_text(command, capsys)
    for setting in declared:
        for variable in setting.variables:
            assert f"${variable}" in text, variable
        if not setting.env_only:
            assert setting.option in text, setting.option


@pytest.mark.parametrize(
    "command",
    [("gateway", "serve"), ("worker", "serve"), ("worker", "migrate"), ("operator",), ("dev",),
     ("token",), ("backup", "run"), ("backup", "drill"), ("backup", "restore")],
    ids=" ".join,
)  # fmt: skip
def test_every_flag_has_a_description(command: tuple[str, ...]) -> None:
    parser = build_parser(command[0])
    for name in command:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    flags = [a for a in parser._actions if a.option_strings]
    assert flags
    assert [a.option_strings for a in flags if not a.help] == []


def test_repeatable_settings_read_a_comma_separated_variable_and_a_repeated_flag() -> None:
    env = {"STOWAGE_GATEWAY_ALLOWED_HOSTS": " a.example , b.example:*,,"}
    assert settings_of("gateway", [], env).allowed_hosts == ("a.example", "b.example:*")
    flagged = settings_of("gateway", ["--allowed-host", "c", "--allowed-host", "d"], env)
    assert flagged.allowed_hosts == ("c", "d")

    operator = settings_of("operator", ["--namespace", "t-*"], {})
    assert operator.namespaces == ("t-*",)


def test_the_kubernetes_tenant_source_is_part_of_the_gateway_settings() -> None:
    settings = settings_of(
        "gateway",
        ["--tenants-from=kubernetes", "--kube-namespace=tenants"],
        {"STOWAGE_KUBECONFIG": "/etc/kube/config"},
    )
    assert settings.tenants_from == "kubernetes"
    assert settings.kube_namespace == "tenants"
    assert settings.kubeconfig == Path("/etc/kube/config")
    assert settings_of("gateway", [], {}).tenants_from == "file"


def test_the_public_url_follows_host_and_port_unless_given() -> None:
    assert settings_of("gateway", ["--port", "9000"], {}).public_url == "http://127.0.0.1:9000"
    given = {"STOWAGE_GATEWAY_PUBLIC_URL": "https://mcp.example.com"}
    settings = settings_of("gateway", ["--port", "9000"], given)
    assert settings.public_url == "https://mcp.example.com"
    assert settings.port == 9000


def test_the_redis_password_is_read_from_the_environment_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = {"STOWAGE_REDIS_URL": "redis://r:6379/0", "STOWAGE_REDIS_PASSWORD": "p@ss"}
    assert settings_of("gateway", [], env).redis_url == "redis://:p%40ss@r:6379/0"
    assert "--redis-password" not in help_text(("gateway", "serve"), capsys)


def test_a_worker_hands_its_children_the_same_settings_as_variables() -> None:
    parent = settings_of("worker", ["--db-pool-size", "40", "--policy-file", "/p.yaml"], {
        "STOWAGE_DATABASE_URL": "postgresql+psycopg://u:pw@h/db",
        "STOWAGE_WORKER_PROCESSES": "4",
    })  # fmt: skip
    assert WorkerSettings.from_env(parent.environ()) == parent

    operator = OperatorSettings(
        namespaces=("a", "b-*"), gateway_selector={"x": "1", "y": "2"}, run_migrations=False
    )
    environ = config.to_environ(operator_settings.SETTINGS, operator)
    assert OperatorSettings.from_env(environ) == operator


#: The tools' commands with settings: their command line, settings class and declarations.
TOOLS = {
    "access": (("access", "revoke"), AccessSettings, access_cli.SETTINGS),
    "dev": (("dev",), DevSettings, dev_cli.SETTINGS),
}


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_the_tools_settings_are_declared_and_in_help_with_their_variables(
    tool: str, capsys: pytest.CaptureFixture[str]
) -> None:
    command, cls, declared = TOOLS[tool]
    assert {f.name for f in dataclasses.fields(cls)} <= {s.field for s in declared}
    text = help_text(command, capsys)
    for setting in declared:
        assert f"${setting.variables[0]}" in text, setting.variables[0]
        if not setting.env_only:  # a secret has no flag: a command line shows in ``ps``
            assert setting.option in text, setting.option


def test_the_access_and_dev_commands_read_a_flag_over_its_variable() -> None:
    args = build_parser("access").parse_args(["access", "list", "--tenant", "acme"])
    env = {"STOWAGE_ACCESS_WORKER": "w:50051", "STOWAGE_ACCESS_TIMEOUT": "3"}
    access = config.from_args(AccessSettings, access_cli.SETTINGS, args, env)
    assert (access.worker, access.timeout, access.redis_url) == ("w:50051", 3.0, None)

    args = build_parser("dev").parse_args(["dev", "--port", "9000"])
    env = {"STOWAGE_DEV_PORT": "8001", "STOWAGE_DEV_TENANT": "acme", "STOWAGE_DEV_DATA_DIR": ""}
    dev = config.from_args(DevSettings, dev_cli.SETTINGS, args, env)
    assert (dev.port, dev.tenant, dev.data_dir) == (9000, "acme", DevSettings().data_dir)


def test_access_without_a_worker_is_a_usage_error_naming_flag_and_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("STOWAGE_ACCESS_WORKER", raising=False)
    with pytest.raises(SystemExit) as done:
        main(["access", "list", "--tenant", "acme"])
    assert done.value.code == 2
    assert "worker is required: --worker / $STOWAGE_ACCESS_WORKER" in capsys.readouterr().err


def test_a_command_takes_its_help_and_description_from_its_handlers_docstring() -> None:
    def handler(args: argparse.Namespace) -> int:
        """Tidy the shelves.

        Tidy every shelf of
        the tenant.
        """
        return 0

    parser = argparse.ArgumentParser(prog="stowage")
    commands = config.add_group(parser.add_subparsers(), "shelves", help="shelf work")
    tidy = config.add_command(commands, "tidy", handler, worker_settings.SETTINGS[:1])
    assert tidy.description == f"Tidy every shelf of the tenant. {config.ENVIRONMENT_NOTE}"
    assert [a.help for a in commands._choices_actions] == ["tidy the shelves"]
    assert tidy.parse_args(["--database-url", "sqlite://"]).handler is handler
