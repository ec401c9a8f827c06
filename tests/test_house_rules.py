"""The house rules of the code (issue 11): small modules, short functions, no private imports
across modules, plain steps, a library free of pipeline tools. Read from the source, not run."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MODULES = sorted([*REPO.glob("anomaly_models/**/*.py"), *REPO.glob("flows/**/*.py")])
MAX_MODULE_LINES = 600
MAX_FUNCTION_LOC = 80  # lines of code: docstring, blank and comment lines not counted


def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def code_lines(node: ast.FunctionDef | ast.AsyncFunctionDef, lines: list[str]) -> int:
    docstring: set[int] = set()
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(
        first.value.value, str
    ):
        docstring = set(range(first.lineno, first.end_lineno + 1))
    return sum(
        1
        for i in range(node.lineno, node.end_lineno + 1)
        if i not in docstring and lines[i - 1].strip() and not lines[i - 1].strip().startswith("#")
    )


def imported_modules(module: ast.Module) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every import, also those inside functions."""
    found = []
    for node in ast.walk(module):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, a.name, []) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.lineno, node.module, [a.name for a in node.names]))
    return found


def test_the_rules_read_some_code() -> None:
    assert len(MODULES) > 50
    assert any(p.name == "detector.py" for p in MODULES)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_module_size_and_function_length(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_MODULE_LINES, f"{len(lines)} lines"
    long = [
        f"{node.name} (line {node.lineno}): {code_lines(node, lines)} lines of code"
        for node in ast.walk(tree(path))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and code_lines(node, lines) > MAX_FUNCTION_LOC
    ]
    assert not long


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_no_private_names_imported_from_another_module(path: Path) -> None:
    private = [
        f"line {line}: from {module} import {name}"
        for line, module, names in imported_modules(tree(path))
        for name in names
        if name.startswith("_") and not name.startswith("__")
    ]
    assert not private


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        ("flows/steps", ("prefect", "mlflow")),
        ("anomaly_models", ("prefect", "mlflow", "great_expectations", "dvc", "flows")),
    ],
)
def test_plain_layers_import_no_pipeline_tool(folder: str, forbidden: tuple[str, ...]) -> None:
    offenders = [
        f"{path.relative_to(REPO)}:{line} imports {module}"
        for path in sorted((REPO / folder).rglob("*.py"))
        for line, module, _ in imported_modules(tree(path))
        if module.split(".")[0] in forbidden
    ]
    assert not offenders
