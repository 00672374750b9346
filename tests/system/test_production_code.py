"""What production code must not contain: statements that vanish under `python -O`
with their side effects, and fault-injection hooks for tests."""

from __future__ import annotations

import ast
from pathlib import Path

import flashclaim

PACKAGE = Path(flashclaim.__file__).resolve().parent


def modules() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text())) for p in sorted(PACKAGE.rglob("*.py"))]


def does_work(node: ast.AST) -> bool:
    """An await, or a call of anything but isinstance (a pure check)."""
    if isinstance(node, ast.Await):
        return True
    return isinstance(node, ast.Call) and not (
        isinstance(node.func, ast.Name) and node.func.id == "isinstance")


def test_no_assert_does_work() -> None:
    """`assert await redis.script_load(...)` reloaded scripts only without -O."""
    offenders = [
        f"{path.name}:{node.lineno}"
        for path, tree in modules() for node in ast.walk(tree)
        if isinstance(node, ast.Assert) and any(does_work(n) for n in ast.walk(node.test))
    ]
    assert offenders == []


def test_no_process_exit_hooks() -> None:
    """The ledger once called os._exit(137) when an environment variable said so."""
    offenders = [
        f"{path.name}:{node.lineno}"
        for path, tree in modules() for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == "_exit"
    ]
    assert offenders == []
