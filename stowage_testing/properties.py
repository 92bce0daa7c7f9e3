"""Property tests that run the same way everywhere: bounded, reproducible, nothing kept.

``derandomize=True`` gives every machine the same examples, ``database=None``
writes no example database, and :func:`hypothesis_home` keeps what hypothesis
caches out of the repository.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir


def reproducible(examples: int) -> Callable[[Any], Any]:
    """Settings for a property checked on ``examples`` examples against real servers."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@contextmanager
def hypothesis_home(directory: Path) -> Iterator[None]:
    """Hypothesis's cache (``.hypothesis/``) under ``directory`` while the block runs."""
    set_hypothesis_home_dir(directory / "hypothesis")
    try:
        yield
    finally:
        set_hypothesis_home_dir(None)
