"""Write a benchmark's table into BENCHMARKS.md between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``."""

from __future__ import annotations

import datetime as dt
import platform
from pathlib import Path


def replace_section(path: Path, name: str, body: str) -> None:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    stamp = f"_Measured {dt.date.today().isoformat()} on {platform.machine()}, {platform.python_version()}._"
    block = f"{start}\n{body}\n\n{stamp}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        text = before + block + after
    else:
        text = text.rstrip("\n") + f"\n\n{block}\n"
    path.write_text(text)
