"""The course's autograder: ``check(fn)`` in a notebook; the same checks in CI and grading."""
from autograder.core import CheckFailure, Result, call, check, checks, expect, expect_close, expect_tensor
from autograder.progress import progress

__all__ = ["check", "checks", "call", "expect", "expect_close", "expect_tensor", "CheckFailure", "Result", "progress"]
