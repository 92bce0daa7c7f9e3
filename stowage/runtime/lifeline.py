"""A child process that ends with the process that started it, even one killed outright.

Linux keeps a process running when its parent dies: it is adopted by init and
goes on holding its port and serving its data. ``PR_SET_PDEATHSIG`` asks the
kernel to signal the child when its parent goes, whatever the parent died of
(SIGKILL included). A child sets it for itself (:func:`follow_parent`) and
then checks that its parent is still the one it was given, which closes the
race of a parent that died before the call.

Two ways to hand a child its parent:

- a supervisor of one component passes it as a setting of the child (the
  worker's and the gateway's ``--processes``);
- any ``stowage`` command started with :func:`child_environ` (``stowage dev``'s
  worker) finds :data:`FOLLOW_PARENT_ENV` and follows that parent before it
  parses its arguments (:func:`follow_parent_named_in`, from :mod:`stowage.cli`).

Linux only (``prctl``); imports only the standard library, so every command
can afford it.
"""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Mapping, MutableMapping

#: The pid of the process a ``stowage`` command must end with; removed once read.
FOLLOW_PARENT_ENV = "STOWAGE_FOLLOW_PARENT"

_PR_SET_PDEATHSIG = 1


def follow_parent(parent_pid: int, sig: signal.Signals = signal.SIGTERM) -> None:
    """Get ``sig`` when the parent dies; exit now when ``parent_pid`` is gone already."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(sig)) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_PDEATHSIG): {os.strerror(errno)}")
    if os.getppid() != parent_pid:  # it died before the line above
        raise SystemExit(f"the supervising process {parent_pid} is gone")


def follow_parent_named_in(environ: MutableMapping[str, str]) -> None:
    """Follow the parent :data:`FOLLOW_PARENT_ENV` names, if any, and remove the variable.

    Removed so that this process's own children, which inherit its
    environment, do not take its parent for theirs. Raises SystemExit when the
    value is not a pid or that process is gone.
    """
    value = environ.pop(FOLLOW_PARENT_ENV, "")
    if not value:
        return
    if not value.isdigit():
        raise SystemExit(f"${FOLLOW_PARENT_ENV}: {value!r} is not a process id")
    follow_parent(int(value))


def child_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` for a ``stowage`` command that must end with this process."""
    return {**environ, FOLLOW_PARENT_ENV: str(os.getpid())}


__all__ = ["FOLLOW_PARENT_ENV", "child_environ", "follow_parent", "follow_parent_named_in"]
