"""The repository's layout does not shadow what Python or its standard library provide."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_operator_folder_never_shadows_the_standard_library() -> None:
    # From the repository root (first on sys.path, as `python -m` and pytest put it),
    # `import operator` must still be the standard library's module: the folder
    # operator/ has no __init__.py, so it is at most a namespace portion, which a
    # regular module found on sys.path always beats.
    assert not (REPO / "operator" / "__init__.py").exists()
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            "import operator, sys; print(operator.__file__); print(operator.add(2, 3))",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert found[1] == "5"
    assert Path(found[0]).resolve().parent != REPO / "operator"
    assert "site-packages" not in found[0] and found[0].endswith("operator.py")


def test_the_protobuf_generator_is_a_tool_outside_the_package() -> None:
    # The product never carries the development-only generator (it needs grpc_tools).
    assert not (REPO / "stowage" / "protogen.py").exists()
    assert (REPO / "hack" / "protogen.py").exists()
