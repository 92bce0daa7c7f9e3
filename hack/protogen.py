"""Generate the Python gRPC stubs from ``proto/`` into ``stowage/v1/`` (``make proto``).

A development tool, not part of the product: it needs ``grpc_tools`` (a dev
dependency) and runs from a checkout.

The stubs are committed so that an install needs no code generator; a test
regenerates them into a temporary directory and fails when they differ.
"""

from __future__ import annotations

import sys
from pathlib import Path

#: The repository (this file is hack/protogen.py).
ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"


def proto_files() -> list[Path]:
    return sorted(PROTO_ROOT.rglob("*.proto"))


def generate(out_dir: Path) -> None:
    """Write ``*_pb2.py``, ``*_pb2.pyi`` and ``*_pb2_grpc.py`` under ``out_dir``."""
    import grpc_tools
    from grpc_tools import protoc

    include = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *(str(p.relative_to(PROTO_ROOT)) for p in proto_files()),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


def main() -> None:
    generate(ROOT)
    print(f"generated stubs for {len(proto_files())} proto file(s)", file=sys.stderr)


if __name__ == "__main__":
    main()
