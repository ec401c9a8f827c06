"""Extract the code examples of the seed documents, with only the import path changed.

    python tests/seed_examples/extract.py [SEEDS_DIR]     (default: ../shared/seeds)

Writes ``seed_<doc>_<n>.py`` beside this file. The only edits are the ones the project allows:
``kerasfactory`` -> ``anomaly_models`` (and the fusionlab paths -> ``anomaly_models``), and Keras 3's
weight-file suffix (``*.h5`` -> ``*.weights.h5``). ``test_seed_examples.py`` checks that the
files here still equal a fresh extraction when the seeds are available.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_SEEDS = HERE.parents[2] / "shared" / "seeds"

# (document glob, style): markdown = ```python fences; numbered = lines "1".."N" then N lines of code
DOCUMENTS = {"000": "numbered", "001": "markdown", "002": "numbered"}


def rename(code: str) -> str:
    code = code.replace("kerasfactory", "anomaly_models")
    code = code.replace("fusionlab.nn.anomaly_detection", "anomaly_models")
    code = code.replace("fusionlab.nn.utils", "anomaly_models")
    return re.sub(r"(['\"])([\w./-]+?)(?<!\.weights)\.h5\1", r"\1\2.weights.h5\1", code)


def markdown_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def numbered_blocks(text: str) -> list[str]:
    lines, blocks, i = text.split("\n"), [], 0
    while i < len(lines):
        n, j = 0, i
        while j < len(lines) and lines[j].strip() == str(n + 1):
            n, j = n + 1, j + 1
        if n:
            blocks.append("\n".join(lines[j : j + n]) + "\n")
            i = j + n
        else:
            i += 1
    return blocks


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except SyntaxError:
        return False
    return True


def extract(seeds_dir: Path) -> dict[str, str]:
    out = {}
    for doc, style in DOCUMENTS.items():
        (path,) = sorted(seeds_dir.glob(f"{doc}_*.txt"))
        text = path.read_text(encoding="utf-8")
        blocks = markdown_blocks(text) if style == "markdown" else numbered_blocks(text)
        # API signatures are printed like code too; an example is a block that parses as Python
        examples = [b for b in blocks if _parses(b)]
        for n, block in enumerate(examples):
            out[f"seed_{doc}_{n:02d}.py"] = rename(block)
    return out


def main() -> None:
    seeds_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SEEDS
    for name, code in extract(seeds_dir).items():
        (HERE / name).write_text(code, encoding="utf-8")
        print(name)


if __name__ == "__main__":
    main()
