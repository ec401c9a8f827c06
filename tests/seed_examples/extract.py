"""Extract the code examples of the seed documents, with only the import path changed.

    python tests/seed_examples/extract.py [SEEDS_DIR]     (default: ../shared/seeds)

Writes ``seed_<doc>_<n>.py`` beside this file. The only edits are the ones the project allows:
``kerasfactory`` -> ``anomaly_models`` (and the fusionlab paths -> ``anomaly_models``), and Keras 3's
weight-file suffix (``*.h5`` -> ``*.weights.h5``). ``test_seed_examples.py`` checks that the
files here still equal a fresh extraction when the seeds are available.

Document styles: ``markdown`` (```python fences), ``numbered`` (a run of lines "1".."N", then the
N lines of code) and ``fused`` (each code line prefixed by its number, "1import numpy as np",
with a bare "8" for an empty line 8). The ``fused`` documents also lost their indentation (every
indented line starts with one space), so :func:`reindent` restores the block structure that the
code's own colons and brackets imply; the code itself is not changed.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_SEEDS = HERE.parents[2] / "shared" / "seeds"

# (document glob, style): markdown = ```python fences; numbered = lines "1".."N" then N lines of code;
# fused = lines "1<code>", "2<code>", ... (number and code on one line, indentation collapsed)
DOCUMENTS = {"000": "numbered", "001": "markdown", "002": "numbered", "004": "fused"}


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


def _numbered_line(line: str, number: int) -> str | None:
    """The code of ``line`` when it starts with ``number`` (not followed by a digit), else None."""
    prefix = str(number)
    if not line.startswith(prefix) or line[len(prefix) : len(prefix) + 1].isdigit():
        return None
    return line[len(prefix) :]


def fused_blocks(text: str) -> list[str]:
    lines, blocks, i = text.split("\n"), [], 0
    while i < len(lines):
        code: list[str] = []
        while i + len(code) < len(lines):
            rest = _numbered_line(lines[i + len(code)], len(code) + 1)
            if rest is None:
                break
            code.append(rest)
        if code:
            blocks.append("\n".join(reindent(code)) + "\n")
            i += len(code)
        else:
            i += 1
    return blocks


_DEDENT_KEYWORDS = {
    "elif": ("if", "elif"),
    "else": ("if", "elif", "for", "while", "try", "except"),
    "except": ("try", "except"),
    "finally": ("try", "except", "else"),
}


def _scan(line: str, state: dict) -> str:
    """Advance the bracket / string state over ``line``; return its last code character."""
    last, i = "", 0
    while i < len(line):
        ch = line[i]
        quote = state["quote"]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if line.startswith(quote, i):
                state["quote"] = None
                i += len(quote)
                last = ch
                continue
            i += 1
            continue
        if ch == "#":
            break
        if ch in "\"'":
            state["quote"] = ch * 3 if line.startswith(ch * 3, i) else ch
            i += len(state["quote"])
            last = ch
            continue
        if ch in "([{":
            state["brackets"] += 1
        elif ch in ")]}":
            state["brackets"] -= 1
        if not ch.isspace():
            last = ch
        i += 1
    if state["quote"] and len(state["quote"]) == 1:
        state["quote"] = None  # a one-quote string never spans lines
    return last


def reindent(lines: list[str]) -> list[str]:
    """Restore indentation lost by the document (each indented line kept a single space).

    A line without leading space is at depth 0. An indented line after a block header (a line
    ending with ``:``) is one level deeper than the header; other indented lines stay at the
    depth of the statement before them; ``elif`` / ``else`` / ``except`` / ``finally`` line up
    with their header. Lines inside brackets, after a backslash or inside a triple-quoted string
    are continuation lines: indented one level past their statement (Python ignores it).
    """
    out: list[str] = []
    state = {"brackets": 0, "quote": None}
    depth, pending, continuing = 0, False, False
    headers: list[tuple[int, str]] = []
    for raw in lines:
        stripped, indented = raw.strip(), raw[:1].isspace()
        if continuing:
            out.append("    " * (depth + 1) + stripped if stripped else "")
        elif not stripped:
            out.append("")
            continue
        elif stripped.startswith("#"):
            out.append("    " * ((depth + 1 if pending else depth) if indented else 0) + stripped)
            continue
        else:
            keyword = re.match(r"[A-Za-z_]\w*", stripped)
            word = keyword.group(0) if keyword else ""
            if not indented:
                depth = 0
            elif pending:
                depth += 1
            elif word in _DEDENT_KEYWORDS:
                for header_depth, header in reversed(headers):
                    if header_depth < depth and header in _DEDENT_KEYWORDS[word]:
                        depth = header_depth
                        break
            out.append("    " * depth + stripped)
            statement_word, pending = word, False
        last = _scan(stripped, state)
        continuing = bool(state["brackets"] > 0 or state["quote"] or last == "\\")
        if not continuing and last == ":":
            pending = True
            headers.append((depth, statement_word))
    return out


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
        readers = {"markdown": markdown_blocks, "numbered": numbered_blocks, "fused": fused_blocks}
        blocks = readers[style](text)
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
