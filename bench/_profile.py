"""py-spy under load: record processes while a round runs, then say where their time went.

``record`` starts one ``py-spy record`` per process (raw folded stacks,
``--nonblocking`` so the process is never paused); ``top`` reads a folded file
and lists the functions with the most samples, by self time and inclusive
(a function counted once per stack, its line numbers merged).
"""

from __future__ import annotations

import collections
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

_LINE = re.compile(r":\d+\)")


def record(pids: Mapping[str, int], seconds: float, out: Path) -> list[subprocess.Popen[bytes]]:
    """One py-spy per process (and its children), ``out/NAME.folded``; wait on the result."""
    out.mkdir(parents=True, exist_ok=True)
    spy = Path(sys.executable).with_name("py-spy")
    spies = []
    for name, pid in pids.items():
        folded = str(out / f"{name}.folded")
        args = [str(spy), "record", "-p", str(pid), "-d", str(max(1, int(seconds))), "-r", "200",
                "-f", "raw", "-o", folded, "--subprocesses", "--nonblocking"]  # fmt: skip
        spies.append(subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return spies


def top(folded: Path, count: int = 15) -> str:
    """The ``count`` functions with most self samples and most inclusive samples."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not samples.isdigit():
            continue
        n = int(samples)
        total += n
        frames = [_LINE.sub(")", f) for f in stack.split(";")]
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    if not total:
        return f"{folded.name}: no samples"
    lines = [f"{folded.stem}: {total} samples", "  self:"]
    lines += [f"  {100 * n / total:5.1f}%  {f[:110]}" for f, n in own.most_common(count)]
    lines.append("  inclusive:")
    lines += [f"  {100 * n / total:5.1f}%  {f[:110]}" for f, n in inclusive.most_common(2 * count)]
    return "\n".join(lines)
