"""Realistic wrong implementations, a module per chapter (``tests/wrong/chNN_name.py``).

Each module defines ``WRONG: dict[str, list[callable]]``: for every exercise, implementations
that make a mistake learners really make (the docstring says which). Every check must fail on
at least one of them, and each must fail at least one check: that is how we know the checks
can fail.
"""
