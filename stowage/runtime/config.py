"""One reader for every component's settings: a flag beats its variable beats the default.

A component declares each setting once, as a :class:`Setting` (the settings
field, its environment variable, how to read it, a line of help), in a tuple
beside its frozen settings dataclass. From that tuple :func:`add_command`
makes a command (its help from its handler's docstring) whose flags
:func:`add_arguments` gives (each one's help names its variable and default),
and :func:`resolve` (or :func:`from_args`) builds the dataclass. Defaults live
in the dataclass only, so a test that constructs settings directly gets the
same ones. Settings that several components have (:func:`log_level`,
:func:`metrics_port`, :func:`kubeconfig`) are declared here once.

**What counts as set**: a flag is set when it was given on the command line
(a flag argparse did not see is ``None``). A variable is set when it is present
*and not the empty string*; ``STOWAGE_X=`` means the same as no ``STOWAGE_X``,
so a chart can pass an empty value for "use the default". A variable that does
not read as its cast says (``'abc' is not a number``) is a :class:`ConfigError`
that names the variable; a bad flag is argparse's usage error that names the flag.

Modelled on Starlette's ``Config(environ, env_prefix)`` with casts. No I/O here:
the environment is passed in by the entry point, never read at import time.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import math
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

S = TypeVar("S")
T = TypeVar("T")

#: How a setting is read from text: raises ValueError with a message that
#: quotes the text and says what was expected.
Cast = Callable[[str], Any]


class ConfigError(ValueError):
    """A setting is missing or unreadable; the message names its flag or variable."""


# -- casts ---------------------------------------------------------------------------


def text(value: str) -> str:
    """The text as given."""
    return value


def integer(value: str) -> int:
    """A whole number (``8``, ``-1``)."""
    try:
        return int(value.strip())
    except ValueError:
        raise ValueError(f"{value!r} is not a whole number") from None


def number(value: str) -> float:
    """A finite number (``0.5``, ``30``)."""
    try:
        result = float(value.strip())
    except ValueError:
        raise ValueError(f"{value!r} is not a number") from None
    if not math.isfinite(result):
        raise ValueError(f"{value!r} is not a finite number")
    return result


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def boolean(value: str) -> bool:
    """``true``/``false`` (also ``1``/``0``, ``yes``/``no``, ``on``/``off``; any case)."""
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(f"{value!r} is not true or false")


def path(value: str) -> Path:
    """A file system path."""
    return Path(value)


def at_least(minimum: int, cast: Callable[[str], int] = integer) -> Callable[[str], int]:
    """``cast``, refusing values below ``minimum``."""

    def read(value: str) -> int:
        result = cast(value)
        if result < minimum:
            raise ValueError(f"{value!r} is less than {minimum}")
        return result

    read.__name__ = cast.__name__
    read.__doc__ = f"{cast.__doc__} At least {minimum}."
    return read


def one_of(*choices: str) -> Callable[[str], str]:
    """One of ``choices``, exactly."""

    def read(value: str) -> str:
        if value not in choices:
            raise ValueError(f"{value!r} is not one of {', '.join(choices)}")
        return value

    read.__name__ = "choice"
    return read


# -- declarations --------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One setting: the settings field, its variable(s), how to read it, its help.

    - ``env``: the variable; a tuple lists fallbacks, the first one set wins
      (``("STOWAGE_KUBECONFIG", "KUBECONFIG")``).
    - ``flag``: the command line flag; default ``--`` and the field with dashes.
    - ``many``: the value is a tuple; the flag repeats, the variable is
      comma-separated (blank items dropped).
    - ``env_only``: no flag, for secrets (a command line is visible in ``ps``)
      and for what a parent process hands its children; still listed in ``--help``.
    - ``shown_default``: the default as ``--help`` says it, when the
      dataclass default alone would mislead (``http://HOST:PORT``).
    """

    field: str
    env: str | tuple[str, ...]
    help: str
    cast: Cast = text
    flag: str = ""
    many: bool = False
    env_only: bool = False
    metavar: str | None = None
    shown_default: str | None = None

    @property
    def variables(self) -> tuple[str, ...]:
        return (self.env,) if isinstance(self.env, str) else self.env

    @property
    def option(self) -> str:
        return self.flag or "--" + self.field.replace("_", "-")

    @property
    def where(self) -> str:
        """How a message names it: ``--call-timeout / $STOWAGE_GATEWAY_CALL_TIMEOUT``."""
        names = " or ".join(f"${v}" for v in self.variables)
        return names if self.env_only else f"{self.option} / {names}"


#: The variables a kubeconfig is read from, the first one set winning.
KUBECONFIG_ENV = ("STOWAGE_KUBECONFIG", "KUBECONFIG")


def log_level(variable: str) -> Setting:
    """A component's log level, read from ``variable``."""
    return Setting("log_level", variable, "DEBUG, INFO, WARNING or ERROR")


def metrics_port(variable: str) -> Setting:
    """A component's Prometheus port, read from ``variable``; 0 turns the endpoint off."""
    return Setting("metrics_port", variable, "Prometheus metrics port; 0 disables it", at_least(0))


def kubeconfig(help: str, shown_default: str) -> Setting:
    """The cluster's kubeconfig, from :data:`KUBECONFIG_ENV`; unset, ``shown_default`` applies."""
    return Setting("kubeconfig", KUBECONFIG_ENV, help, path, shown_default=shown_default)


def named(settings: Iterable[Setting], *fields: str) -> tuple[Setting, ...]:
    """The declarations of ``fields``, in that order (for a command that needs a few)."""
    by_field = {s.field: s for s in settings}
    return tuple(by_field[f] for f in fields)


# -- the command line ----------------------------------------------------------------


def _argparse_type(cast: Cast) -> Callable[[str], Any]:
    """``cast`` for argparse: its message becomes the usage error that names the flag."""

    def convert(value: str) -> Any:
        try:
            return cast(value)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = getattr(cast, "__name__", "value")
    return convert


def _default_text(setting: Setting, cls: type[Any] | None) -> str | None:
    if setting.shown_default is not None:
        return setting.shown_default
    if cls is None:
        return None
    for f in dataclasses.fields(cls):
        if f.name != setting.field:
            continue
        if f.default is not dataclasses.MISSING:
            value: Any = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            return "required"
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return _as_text(value) or None
    return None


def _help(setting: Setting, cls: type[Any] | None) -> str:
    variables = ", then ".join(f"${v}" for v in setting.variables)
    default = _default_text(setting, cls)
    if default == "required":
        tail = f"required; {variables}"
    else:
        tail = f"default: {default}; {variables}" if default else variables
    # argparse %-formats help strings.
    return f"{setting.help} ({tail})".replace("%", "%%")


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, but a line break in a description or epilog stays one.

    Each line is wrapped on its own, so a list of variables reads as a list; an
    indented line's continuation hangs under it.
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        lines = []
        for line in text.splitlines():
            margin = line[: len(line) - len(line.lstrip())]
            hang = indent + margin + ("  " if margin else "")
            lines.append(
                textwrap.fill(
                    line.strip(), width, initial_indent=indent + margin, subsequent_indent=hang
                )
            )
        return "\n".join(lines)


def add_arguments(
    parser: argparse.ArgumentParser, settings: Iterable[Setting], cls: type[Any] | None = None
) -> None:
    """A flag for each setting (none for ``env_only`` ones, which the epilog lists).

    ``cls`` is the settings dataclass whose defaults the help shows. A flag not
    given parses as ``None``, so :func:`resolve` can tell it from a given one.
    The parser's help keeps the line breaks of its description and epilog
    (:class:`HelpFormatter`).
    """
    env_only: list[str] = []
    for s in settings:
        if s.env_only:
            variables = ", then ".join(f"${v}" for v in s.variables)
            env_only.append(f"  {variables}: {s.help}")
            continue
        kwargs: dict[str, Any] = {"dest": s.field, "default": None, "help": _help(s, cls)}
        if s.cast is boolean:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = _argparse_type(s.cast)
            kwargs["metavar"] = s.metavar or s.field.upper()
            if s.many:
                kwargs["action"] = "append"
        parser.add_argument(s.option, **kwargs)
    if env_only:
        listing = "Environment only (never on a command line):\n" + "\n".join(env_only)
        parser.epilog = f"{parser.epilog}\n\n{listing}" if parser.epilog else listing
    parser.formatter_class = HelpFormatter


#: How the description of every command with settings ends.
ENVIRONMENT_NOTE = (
    "A setting's environment variable is named in its help; a flag wins over its variable, "
    "and an empty variable counts as unset."
)

#: What runs a command: its parsed arguments in, its exit status out.
Handler = Callable[[argparse.Namespace], int]
#: Where a command's subcommands are added (``add_subparsers()``'s value).
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_group(subparsers: Subparsers, name: str, help: str) -> Subparsers:
    """A command made of commands (``stowage worker migrate|serve``): where they are added."""
    group = subparsers.add_parser(name, help=help)
    return group.add_subparsers(dest=f"{name}_command", required=True, metavar="COMMAND")


def _documented(handler: Handler) -> tuple[str, str]:
    """(help, description) of the command ``handler`` runs, from its docstring.

    The first line is the help (``run the MCP gateway``: first letter lowered, no
    full stop); the paragraphs after it, each unwrapped, are the description, or
    the first line alone when there are none.
    """
    paragraphs = [
        " ".join(p.split()) for p in inspect.cleandoc(handler.__doc__ or "").split("\n\n")
    ]
    first = paragraphs[0]
    description = "\n\n".join(paragraphs[1:]) or first
    return first[:1].lower() + first[1:].rstrip("."), f"{description} {ENVIRONMENT_NOTE}"


def add_command(
    subparsers: Subparsers,
    name: str,
    handler: Handler,
    settings: Iterable[Setting],
    cls: type[Any] | None = None,
) -> argparse.ArgumentParser:
    """The command ``name``, run by ``handler``, with a flag for each of ``settings``.

    ``handler``'s docstring documents the command: its first line is the help
    the parent command lists, what follows the description (which ends with
    :data:`ENVIRONMENT_NOTE`). ``cls`` is as for :func:`add_arguments`. Returns
    the parser, for arguments that are not settings.
    """
    help, description = _documented(handler)
    parser = subparsers.add_parser(name, help=help, description=description)
    add_arguments(parser, settings, cls)
    parser.set_defaults(handler=handler)
    return parser


def flags(args: argparse.Namespace, settings: Iterable[Setting]) -> dict[str, Any]:
    """The values of ``settings``' flags in ``args`` (``None`` where not given)."""
    return {s.field: getattr(args, s.field, None) for s in settings if not s.env_only}


# -- resolving -----------------------------------------------------------------------


def _given(value: object) -> bool:
    return value is not None and not (isinstance(value, tuple | list) and not value)


def _from_env(setting: Setting, environ: Mapping[str, str]) -> tuple[bool, Any]:
    for variable in setting.variables:
        raw = environ.get(variable, "")
        if raw == "":
            continue
        try:
            if setting.many:
                return True, tuple(
                    setting.cast(item.strip()) for item in raw.split(",") if item.strip()
                )
            return True, setting.cast(raw)
        except ValueError as e:
            raise ConfigError(f"${variable}: {e}") from None
    return False, None


def read(
    settings: Iterable[Setting],
    environ: Mapping[str, str],
    given: Mapping[str, object] | None = None,
) -> dict[str, Any]:
    """The settings that are set, by field: a given (non-None) flag, else a set variable.

    ``given`` holds flag values by field, already read (argparse casts them);
    ``None`` or an empty sequence means not given. Unset settings are left out,
    so the dataclass default applies.
    """
    given = given or {}
    values: dict[str, Any] = {}
    for s in settings:
        flag_value = given.get(s.field)
        if _given(flag_value):
            values[s.field] = tuple(flag_value) if s.many else flag_value  # type: ignore[arg-type]
            continue
        found, value = _from_env(s, environ)
        if found:
            values[s.field] = value
    return values


def resolve(
    cls: type[S],
    settings: Sequence[Setting],
    environ: Mapping[str, str],
    given: Mapping[str, object] | None = None,
) -> S:
    """``cls`` built from flag > variable > the dataclass default, field by field.

    A field without a default that is neither given nor set is a ConfigError
    naming its flag and variable.
    """
    values = read(settings, environ, given)
    by_field = {s.field: s for s in settings}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required and f.name not in values:
            where = by_field[f.name].where if f.name in by_field else f.name
            raise ConfigError(f"{f.name.replace('_', ' ')} is required: {where}")
    return cls(**values)


def from_args(
    cls: type[S], settings: Sequence[Setting], args: argparse.Namespace, environ: Mapping[str, str]
) -> S:
    """:func:`resolve` with the flags ``args`` holds (for a command made by :func:`add_command`)."""
    return resolve(cls, settings, environ, flags(args, settings))


def _as_text(value: object) -> str:
    """A value as its variable would hold it (the inverse of the casts)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return ",".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value)
    return str(value)


def to_environ(settings: Iterable[Setting], values: object) -> dict[str, str]:
    """``values``' settings as variables, each under its first name; unset ones left out.

    What a process hands a child so that the child resolves the same settings
    (its command line would show secrets to ``ps``). The inverse of :func:`read`
    for every cast here.
    """
    out: dict[str, str] = {}
    for s in settings:
        if encoded := _as_text(getattr(values, s.field)):
            out[s.variables[0]] = encoded
    return out


__all__ = [
    "ENVIRONMENT_NOTE",
    "KUBECONFIG_ENV",
    "Cast",
    "ConfigError",
    "Handler",
    "HelpFormatter",
    "Setting",
    "Subparsers",
    "add_arguments",
    "add_command",
    "add_group",
    "at_least",
    "boolean",
    "flags",
    "from_args",
    "integer",
    "kubeconfig",
    "log_level",
    "metrics_port",
    "named",
    "number",
    "one_of",
    "path",
    "read",
    "resolve",
    "text",
    "to_environ",
]
