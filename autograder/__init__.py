"""The course's autograder: ``check(fn)`` in a notebook; the same checks in CI and grading."""
import importlib

from autograder.core import CheckFailure, Result, call, check, checks, expect, expect_close, expect_tensor

__all__ = ["check", "checks", "call", "expect", "expect_close", "expect_tensor", "CheckFailure", "Result", "progress"]


def __getattr__(name: str):
    """``progress`` is imported on first use, so that ``python -m autograder.progress`` does not
    find its own module imported already. The module is callable: ``progress()`` runs it."""
    if name == "progress":
        return importlib.import_module("autograder.progress")
    raise AttributeError(f"module 'autograder' has no attribute {name!r}")
