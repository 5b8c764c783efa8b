"""Remove hidden checks from a chapter's check module, keeping everything else byte for byte.

A hidden check is a function decorated with ``@checks(..., hidden=True)`` (or
``@autograder.checks``/``@core.checks``). Found with :mod:`ast`, removed by line range, so the
module that remains is the original text without them. Used by the learner distribution
(``python -m course.release``) and by the sandbox, which shows the learner only public checks.
"""
from __future__ import annotations

import ast


def _is_hidden_check(decorator: ast.expr) -> bool:
    if not isinstance(decorator, ast.Call):
        return False
    func = decorator.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    if name != "checks":
        return False
    return any(k.arg == "hidden" and not (isinstance(k.value, ast.Constant) and not k.value.value)
               for k in decorator.keywords)


def hidden_check_names(source: str) -> list[str]:
    tree = ast.parse(source)
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and any(_is_hidden_check(d) for d in n.decorator_list)]


def strip_hidden_checks(source: str) -> str:
    """``source`` without its hidden checks (a ``hidden=`` that is not literally False counts)."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    drop: set[int] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
                _is_hidden_check(d) for d in node.decorator_list):
            first = min(d.lineno for d in node.decorator_list)
            drop.update(range(first - 1, node.end_lineno))
    kept = "".join(line for i, line in enumerate(lines) if i not in drop)
    while "\n\n\n\n" in kept:
        kept = kept.replace("\n\n\n\n", "\n\n\n")
    return kept.rstrip("\n") + "\n"
