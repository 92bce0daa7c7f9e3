"""A span per SQL statement, from SQLAlchemy's engine events.

Each statement the engine sends within a trace (an RPC's handler) is a CLIENT
span named by its operation and table (``SELECT objects``) with
``db.system.name`` and ``db.query.text``: the statement as SQLAlchemy compiled
it, placeholders and not the values bound to them (which may be a user's
data). Statements outside a trace (the worker's housekeeping loops) start no
trace of their own, one per statement. Listened for only while tracing is on.
A statement run below SQLAlchemy (a prepared one, on the driver's connection)
gets the same span from :func:`statement_span`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from stowage.tracing import _spans

_TRACER = _spans.Tracer("stowage.sql")
#: Where a statement's span waits for its end: on its execution context, one per statement.
_SPAN = "_stowage_span"
#: A statement's text is cut here: enough to recognise it, bounded in every span.
_MAX_TEXT = 2048
_TARGET = re.compile(r"\b(?:FROM|INTO|UPDATE|TABLE)\s+\"?([A-Za-z_][\w.]*)", re.IGNORECASE)
#: What a statement that starts with ``WITH`` does in the end: its first write, else a read.
_WRITE = re.compile(
    r"\b(INSERT\s+INTO|(?<!FOR )UPDATE|DELETE\s+FROM)\s+\"?([A-Za-z_][\w.]*)", re.IGNORECASE
)


def _name(statement: str) -> str:
    """``SELECT objects``, ``INSERT audit_events``; a CTE by what it writes (``WITH INSERT x``)."""
    operation = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
    if operation == "WITH" and (write := _WRITE.search(statement)):
        return f"WITH {write.group(1).split()[0].upper()} {write.group(2)}"
    target = _TARGET.search(statement[:400])
    return f"{operation} {target.group(1)}" if target else operation


def _start(statement: str, system: str) -> Any:
    """A statement's CLIENT span, named and described as every one here is."""
    return _TRACER.start(
        _name(statement),
        {"db.system.name": system, "db.query.text": statement[:_MAX_TEXT]},
        kind=_spans.SpanKind.CLIENT,
    )


def _failed(span: Any, error: BaseException) -> None:
    """Mark ``span`` failed by ``error``, with its SQLSTATE when it has one."""
    code = getattr(error, "sqlstate", None)
    if code:
        span.set_attribute("db.response.status_code", str(code))
    span.set_status(_spans.StatusCode.ERROR, type(error).__name__)


def _before(
    conn: Any, _cursor: Any, statement: str, _parameters: Any, context: Any, _many: bool
) -> None:
    if context is None or not _spans.in_trace():
        return
    setattr(context, _SPAN, _start(statement, conn.dialect.name))


def _after(
    _conn: Any, _cursor: Any, _statement: str, _parameters: Any, context: Any, _many: bool
) -> None:
    span = getattr(context, _SPAN, None)
    if span is not None:
        span.end()


def _error(exception_context: Any) -> None:
    span = getattr(exception_context.execution_context, _SPAN, None)
    if span is None:
        return
    _failed(span, exception_context.original_exception)
    span.end()


@contextmanager
def statement_span(statement: str, system: str) -> Iterator[None]:
    """The span of one statement run below SQLAlchemy, as its engine's events make the
    others' (nothing outside a trace, or while tracing is off)."""
    if not _spans.in_trace():
        yield
        return
    span = _start(statement, system)
    try:
        yield
    except Exception as error:
        _failed(span, error)
        raise
    finally:
        span.end()


def trace_statements(engine: AsyncEngine | Engine) -> None:
    """Open a span for each statement ``engine`` runs, when tracing is on."""
    if not _spans.enabled():
        return
    sync = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    event.listen(sync, "before_cursor_execute", _before)
    event.listen(sync, "after_cursor_execute", _after)
    event.listen(sync, "handle_error", _error)


__all__ = ["statement_span", "trace_statements"]
