"""The autograder's core: exercises, their checks, and the report a learner reads.

A *check* is a pytest-style function ``def check_name(impl, ref)`` registered with the
``@checks("exercise_name")`` decorator in a chapter module (``autograder/chNN_name.py``):

* ``impl`` is the implementation under test, wrapped by :class:`Guarded` so that an exception
  in the learner's code, or a tensor argument modified in place, becomes a readable message;
* ``ref`` is a :class:`Reference`: ``ref(*args)`` is the reference output on those arguments and
  ``ref.apply(f)`` is ``f(reference_object)``. In the course repository it calls the live
  reference in ``solutions/``; in the learner distribution it replays outputs recorded from
  that reference (``python -m autograder.record``), so public checks need no solutions.

A check fails by raising :class:`CheckFailure` (usually through :func:`expect_close` and
friends), whose message names the likely mistake. The same check runs in three places: in the
notebook through :func:`check`, under pytest in CI (against the reference, the stub and the
wrong implementations kept in ``tests/``), and when grading a class.
"""
from __future__ import annotations

import contextvars
import hashlib
import importlib
import inspect
import json
import os
import pkgutil
import time
import traceback
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

EXPECTED_DIR = Path(__file__).parent / "expected"
CHECK_MODEL_VARIABLE = "COURSE_CHECK_MODEL"


CHAPTER_MODELS: dict[str, str] = {}
"""Checks modules whose checks run on a bundled model other than the course default, e.g.
``{"ch01_circuits": "world-gpt2"}``: chapter 01 studies learned position embeddings, which the
default model's rotary attention does not have. A chapter module registers itself here."""

_CHAPTER = contextvars.ContextVar("checking_chapter", default=None)


@contextmanager
def checking_chapter(chapter: str):
    """Within this block, :func:`check_model` is the model of ``chapter`` (a checks module name
    such as ``ch01_circuits``). :func:`run_checks` and the class grader enter it."""
    token = _CHAPTER.set(chapter)
    try:
        yield
    finally:
        _CHAPTER.reset(token)


def check_model_name() -> str | None:
    """The name :func:`check_model` loads: the ``COURSE_CHECK_MODEL`` environment variable (tests
    use it to run every check on a second, differently shaped model), else the current chapter's
    model from :data:`CHAPTER_MODELS`, else None (the course default)."""
    return os.environ.get(CHECK_MODEL_VARIABLE) or CHAPTER_MODELS.get(_CHAPTER.get())


def check_model():
    """The model that model-based checks run on (see :func:`check_model_name`). Loaded once per
    process."""
    from utils.models import cached_model

    return cached_model(check_model_name())


class CheckFailure(AssertionError):
    """A check found the implementation wrong; ``details`` holds the numbers behind it."""

    def __init__(self, message: str, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}


class LearnerError(CheckFailure):
    """The learner's own code raised, so the check could not compare anything."""


@dataclass
class Check:
    """One registered check of one exercise."""

    exercise: str
    name: str
    function: Callable[[Any, "Reference"], None]
    points: float = 1.0
    hidden: bool = False
    doc: str = ""


@dataclass
class Exercise:
    """An exercise: a function or class learners write, with the checks that grade it."""

    name: str
    chapter: str
    checks: list[Check] = field(default_factory=list)

    @property
    def points(self) -> float:
        return sum(c.points for c in self.checks)


REGISTRY: dict[str, Exercise] = {}


def checks(exercise: str, points: float = 1.0, hidden: bool = False):
    """Register the decorated function as a check of ``exercise``.

    ``points`` is what passing it is worth when grading; ``hidden`` checks run only when grading
    (and in CI), never in the learner's notebook, and are left out of the learner distribution.
    """

    def register(function: Callable) -> Callable:
        chapter = function.__module__.rsplit(".", 1)[-1]
        entry = REGISTRY.setdefault(exercise, Exercise(exercise, chapter))
        if entry.chapter != chapter:
            raise ValueError(f"exercise {exercise!r} is registered by {entry.chapter} and {chapter}")
        name = function.__name__.removeprefix("check_")
        entry.checks.append(Check(exercise, name, function, points, hidden, inspect.getdoc(function) or ""))
        return function

    return register


def load_all_chapters() -> dict[str, Exercise]:
    """Import every ``autograder/chNN_*.py`` module so that its checks register themselves."""
    package = importlib.import_module("autograder")
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("ch"):
            importlib.import_module(f"autograder.{info.name}")
    return REGISTRY


# ---------------------------------------------------------------------------------------------
# The reference: live from solutions/, or replayed from recorded outputs.
# ---------------------------------------------------------------------------------------------


def solutions_module(chapter: str):
    """The reference module ``solutions.<chapter>``, or None where solutions are not shipped."""
    try:
        return importlib.import_module(f"solutions.{chapter}")
    except ModuleNotFoundError as error:
        if error.name in ("solutions", f"solutions.{chapter}"):
            return None
        raise


class Reference:
    """What a check compares against.

    Each call is numbered within its check; ``mode`` is ``"live"`` (call the reference),
    ``"record"`` (call it and keep the output) or ``"replay"`` (return the kept output).
    """

    def __init__(self, exercise: str, check: str, mode: str, store: dict | None = None):
        self.exercise, self.check, self.mode = exercise, check, mode
        self.store = store if store is not None else {}
        self.calls = 0
        self._object = None
        if mode != "replay":
            module = solutions_module(REGISTRY[exercise].chapter)
            if module is None:
                raise RuntimeError("the reference solutions are not available here")
            self._object = getattr(module, exercise)

    def __call__(self, *args, **kwargs):
        """The reference output for these arguments."""
        return self.apply(lambda reference: reference(*args, **kwargs))

    def apply(self, compute: Callable[[Any], Any]):
        """``compute(reference_function_or_class)``, recorded so that it can be replayed."""
        key = f"{self.exercise}/{self.check}/{self.calls}"
        self.calls += 1
        if self.mode == "replay":
            if key not in self.store:
                raise RuntimeError(f"no recorded reference output {key}; run `python -m autograder.record`")
            return self.store[key]
        with torch.no_grad():
            value = compute(self._object)
        if self.mode == "record":
            self.store[key] = value
        return value


# ---------------------------------------------------------------------------------------------
# Guarding the learner's code.
# ---------------------------------------------------------------------------------------------


def _learner_frame(tb) -> str:
    """The innermost traceback line that is the learner's code, not the course's or a library's."""
    course = Path(__file__).resolve().parent.parent
    lines = ""
    for frame in traceback.extract_tb(tb):
        path = Path(frame.filename)
        inside_course = path.is_file() and course in path.resolve().parents
        if "site-packages" in frame.filename or (inside_course and "solutions" not in path.parts):
            continue
        code = (frame.line or "").strip()
        lines = f" (line {frame.lineno}: `{code}`)" if code else f" (line {frame.lineno})"
    return lines


def _copied(value):
    """``value`` with every tensor in it (inside lists, tuples and dicts) replaced by a copy."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone().requires_grad_(value.requires_grad)
    if isinstance(value, (list, tuple)):
        return type(value)(_copied(item) for item in value)
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    return value


def modified_in_place(name: str) -> CheckFailure:
    """The failure of a learner's function that changed one of its input tensors."""
    return CheckFailure(f"`{name}` modified one of its input tensors in place; work on a copy (`x.clone()`) "
                        "or use out-of-place operations")


def _tensors_in(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in _tensors_in(item)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _tensors_in(item)]
    return []


class Guarded:
    """Calls learner code and turns its failures into messages a learner can act on.

    * an exception inside the learner's code becomes a :class:`LearnerError` naming the type,
      the message and the learner's line;
    * a tensor argument changed in place becomes a failure ("clone before modifying").

    The learner's code gets copies of the tensors, so whatever it does to them never reaches the
    check's own inputs (nor a later check or submission that shares them).
    """

    def __init__(self, target: Callable, name: str):
        self.target, self.name = target, name

    def __call__(self, *args, **kwargs):
        copies, copied_kwargs = _copied(args), _copied(kwargs)
        try:
            value = self.target(*copies, **copied_kwargs)
        except NotImplementedError:
            raise LearnerError(f"`{self.name}` is not implemented yet (it raises NotImplementedError)")
        except CheckFailure:
            raise
        except Exception as error:  # the learner's bug, reported without our internals
            raise LearnerError(
                f"`{self.name}` raised {type(error).__name__}: {error}{_learner_frame(error.__traceback__)}"
            ) from None
        originals = _tensors_in(args) + _tensors_in(kwargs)
        for original, copy in zip(originals, _tensors_in(copies) + _tensors_in(copied_kwargs)):
            if (copy.shape, copy.dtype) != (original.shape, original.dtype) or not torch.equal(copy.detach(),
                                                                                          original.detach()):
                raise modified_in_place(self.name)
        return value


def call(function: Callable, *args, name: str | None = None, **kwargs):
    """Call any learner callable (a method, say) under the same guard as ``impl``."""
    return Guarded(function, name or getattr(function, "__qualname__", "your code"))(*args, **kwargs)


# ---------------------------------------------------------------------------------------------
# Comparisons with messages that teach.
# ---------------------------------------------------------------------------------------------


def expect_tensor(actual, what: str = "the output") -> torch.Tensor:
    """Fail unless ``actual`` is a finite tensor; return it."""
    if not isinstance(actual, torch.Tensor):
        raise CheckFailure(f"{what} should be a torch.Tensor, got {type(actual).__name__}")
    if actual.is_floating_point() and not torch.isfinite(actual).all():
        bad = (~torch.isfinite(actual)).sum().item()
        raise CheckFailure(f"{what} has {bad} NaN or inf entries; look for a division by zero or a log of 0")
    return actual


def expect_close(actual, expected, *, atol: float = 1e-5, rtol: float = 1e-4, what: str = "the output",
                 hint: str = "") -> None:
    """Fail unless ``actual`` matches ``expected`` in type, shape, dtype and value.

    The failure message gives shape, dtype, max absolute and relative error, and ``hint``: the
    likely mistake for this particular check.
    """
    expected = torch.as_tensor(expected)
    actual = expect_tensor(actual, what)
    details = {"shape": list(actual.shape), "expected_shape": list(expected.shape), "dtype": str(actual.dtype)}
    suffix = f"; {hint}" if hint else ""
    if actual.shape != expected.shape:
        raise CheckFailure(
            f"{what} has shape {tuple(actual.shape)}, expected {tuple(expected.shape)}{suffix}", details
        )
    if actual.dtype != expected.dtype:
        raise CheckFailure(f"{what} has dtype {actual.dtype}, expected {expected.dtype}; look for a "
                           "conversion (.double(), .long()) or a tensor created without a dtype", details)
    a, e = actual.detach().double(), expected.detach().double()
    error = (a - e).abs()
    max_abs = error.max().item() if error.numel() else 0.0
    max_rel = (error / e.abs().clamp_min(1e-12)).max().item() if error.numel() else 0.0
    details.update(max_abs_error=max_abs, max_rel_error=max_rel)
    if not torch.allclose(a, e, atol=atol, rtol=rtol):
        raise CheckFailure(
            f"{what} differs from the reference (max abs error {max_abs:.3g}, max rel error {max_rel:.3g})"
            f"{suffix}",
            details,
        )


def expect(condition: bool, message: str, **details) -> None:
    """Fail with ``message`` unless ``condition`` holds (a plain bool computed by the check)."""
    if not bool(condition):
        raise CheckFailure(message, details)


# ---------------------------------------------------------------------------------------------
# Running checks and reporting.
# ---------------------------------------------------------------------------------------------


@dataclass
class CheckResult:
    name: str
    passed: bool
    message: str
    points: float
    max_points: float
    seconds: float
    details: dict = field(default_factory=dict)


@dataclass
class Result:
    """What :func:`check` returns: one :class:`CheckResult` per check, and the score."""

    exercise: str
    results: list[CheckResult]

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    @property
    def score(self) -> float:
        return sum(r.points for r in self.results)

    @property
    def max_score(self) -> float:
        return sum(r.max_points for r in self.results)

    def report(self) -> str:
        lines = []
        for r in self.results:
            mark = "PASS" if r.passed else "FAIL"
            line = f"  {mark}  {r.name}"
            if not r.passed:
                line += f": {r.message}"
            if r.details.get("max_abs_error") is not None:
                d = r.details
                line += (f"  [shape {tuple(d['shape'])}, {d['dtype']}, max abs err {d['max_abs_error']:.2g},"
                         f" max rel err {d['max_rel_error']:.2g}]")
            lines.append(line)
        verdict = "all checks passed" if self.passed else f"{sum(r.passed for r in self.results)}/{len(self.results)} checks passed"
        return "\n".join([f"{self.exercise}: {verdict}", *lines])

    def __repr__(self) -> str:
        return f"<Result {self.exercise}: {sum(r.passed for r in self.results)}/{len(self.results)} passed>"


def signature_of(obj) -> list[str]:
    """Parameter names of a function, or of a class's ``__init__`` (without ``self``)."""
    target = obj.__init__ if inspect.isclass(obj) else obj
    return [p for p in inspect.signature(target).parameters if p != "self"]


def expected_signature(exercise: Exercise) -> list[str] | None:
    """The reference's parameter names: live from solutions/, else from the recorded file."""
    module = solutions_module(exercise.chapter)
    if module is not None:
        return signature_of(getattr(module, exercise.name))
    path = EXPECTED_DIR / f"{exercise.chapter}.json"
    if path.exists():
        return json.loads(path.read_text())["signatures"].get(exercise.name)
    return None


def load_recorded(chapter: str) -> dict:
    """Recorded reference outputs for a chapter (see :mod:`autograder.record`)."""
    from autograder.record import load

    return load(chapter)


DEFAULT_SEED = "course"
"""The seed of hidden checks' inputs outside grading (CI, a notebook); grading uses the submission's hash."""


@contextmanager
def seeded_for(seed: str, check: Check):
    """Run ``check`` with torch's global generator seeded from ``seed``, its exercise and its name,
    then put the caller's random state back. A hidden check draws its fresh inputs from the global
    generator, so they depend on nothing but the seed: not on what ran before (another check,
    another submission, a learner's ``torch.manual_seed``), and a rerun draws them again exactly."""
    digest = hashlib.sha256(f"{seed}/{check.exercise}/{check.name}".encode()).digest()
    with torch.random.fork_rng():
        torch.manual_seed(int.from_bytes(digest[:8], "little"))
        yield


def run_checks(impl, exercise: Exercise, *, mode: str = "live", include_hidden: bool = False,
               store: dict | None = None, reference: Callable[[Check], Reference] | None = None,
               seed: str = DEFAULT_SEED) -> Result:
    """Run every check of ``exercise`` against ``impl`` and collect the results.

    ``reference(check)`` makes each check's :class:`Reference` (grading passes one that caches);
    by default it is ``Reference(exercise, check, mode, store)``. Hidden checks run under
    :func:`seeded_for` ``(seed, check)``. Nothing raised inside a check escapes: a failure is a
    :class:`CheckResult` with a message.
    """
    with checking_chapter(exercise.chapter):
        return _run_checks(impl, exercise, mode, include_hidden, store, reference, seed)


def _run_checks(impl, exercise, mode, include_hidden, store, reference, seed) -> Result:
    results = []
    wrong_signature = _signature_problem(impl, exercise)
    for c in exercise.checks:
        if c.hidden and not include_hidden:
            continue
        started = time.perf_counter()
        try:
            if wrong_signature:
                raise CheckFailure(wrong_signature)
            ref = reference(c) if reference else Reference(exercise.name, c.name, mode, store)
            with seeded_for(seed, c) if c.hidden else nullcontext():
                c.function(Guarded(impl, exercise.name), ref)
            passed, message, details = True, "", {}
        except CheckFailure as failure:
            passed, message, details = False, failure.message, failure.details
        except Exception as error:  # a check that broke on strange output must still report
            passed, message, details = False, f"could not be checked: {type(error).__name__}: {error}", {}
        results.append(CheckResult(c.name, passed, message, c.points if passed else 0.0, c.points,
                                   time.perf_counter() - started, details))
    return Result(exercise.name, results)


def _signature_problem(impl, exercise: Exercise) -> str:
    if not callable(impl):
        return f"`{exercise.name}` should be a function or class, got {type(impl).__name__}"
    try:
        actual = signature_of(impl)
    except (TypeError, ValueError):
        return ""
    expected = expected_signature(exercise)
    if expected is not None and actual != expected:
        return f"`{exercise.name}` should take parameters ({', '.join(expected)}), yours takes ({', '.join(actual)})"
    return ""


def check(impl, exercise: str | None = None, *, quiet: bool = False) -> Result:
    """Check your implementation of an exercise and print a report.

    >>> check(generate_batch)              # finds the exercise by the function's name
    >>> check(my_version, "generate_batch")  # or by an explicit id

    Uses the live reference when ``solutions/`` is installed, recorded outputs otherwise.
    Returns a :class:`Result`; your namespace is left untouched.
    """
    load_all_chapters()
    name = exercise or getattr(impl, "__name__", None)
    if name not in REGISTRY:
        known = ", ".join(sorted(REGISTRY))
        raise LookupError(f"no exercise called {name!r}; pass the id explicitly. Known exercises: {known}")
    entry = REGISTRY[name]
    if solutions_module(entry.chapter) is not None:
        result = run_checks(impl, entry, mode="live")
    else:
        result = run_checks(impl, entry, mode="replay", store=load_recorded(entry.chapter))
    if not quiet:
        print(result.report())
    return result
