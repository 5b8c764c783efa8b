"""Every check can pass and can fail: reference, stub and realistic wrong implementations.

These tests are generic: a chapter adds checks in ``autograder/chNN_name.py``, references in
``solutions/chNN_name.py``, stubs in its notebook and wrong implementations in
``tests/wrong/chNN_name.py``, and is covered here without writing a test of its own.
"""
import inspect
import sys
from contextlib import contextmanager
from functools import lru_cache

import pytest
import torch

import autograder.core as core
from autograder.core import expected_signature, run_checks, solutions_module
from autograder.record import load, record
from course.notebooks import exercise_cells, stub_signature, defined_name
import nbformat

from tests.conftest import CHAPTER_NOTEBOOKS, REGISTRY, wrong_implementations

EXERCISES = sorted(REGISTRY)
CHECKS = [(e, c.name) for e in EXERCISES for c in REGISTRY[e].checks]
WRONG = [(e, i) for e in EXERCISES for i, _ in enumerate(wrong_implementations(REGISTRY[e].chapter).get(e, []))]
CHAPTERS = sorted({REGISTRY[e].chapter for e in EXERCISES})


def reference(exercise: str):
    return getattr(solutions_module(REGISTRY[exercise].chapter), exercise)


def failures(result) -> str:
    return "\n".join(f"{r.name}: {r.message}" for r in result.results if not r.passed)


@pytest.mark.parametrize("exercise", EXERCISES)
def test_reference_passes_every_check(exercise):
    result = run_checks(reference(exercise), REGISTRY[exercise], include_hidden=True)
    assert result.passed, failures(result)


@pytest.mark.parametrize("exercise", EXERCISES)
def test_stub_fails_every_check(exercise, learner_stubs):
    assert exercise in learner_stubs, f"no stub for {exercise} in any learner notebook"
    result = run_checks(learner_stubs[exercise], REGISTRY[exercise], include_hidden=True)
    passed = [r.name for r in result.results if r.passed]
    assert not passed, f"the stub of {exercise} passes {passed}"


@pytest.mark.parametrize("exercise,index", WRONG)
def test_wrong_implementation_fails_a_check(exercise, index):
    wrong = wrong_implementations(REGISTRY[exercise].chapter)[exercise][index]
    result = run_checks(wrong, REGISTRY[exercise], include_hidden=True)
    assert not result.passed, f"{wrong.__doc__!r} passes every check of {exercise}"


@pytest.mark.parametrize("exercise,check_name", CHECKS)
def test_every_check_catches_a_wrong_implementation(exercise, check_name):
    entry = REGISTRY[exercise]
    wrongs = wrong_implementations(entry.chapter).get(exercise, [])
    assert wrongs, f"no wrong implementation of {exercise} in tests/wrong/{entry.chapter}.py"
    only = type(entry)(entry.name, entry.chapter, [c for c in entry.checks if c.name == check_name])
    caught = [w for w in wrongs if not run_checks(w, only, include_hidden=True).passed]
    assert caught, f"check {check_name} of {exercise} passes on every wrong implementation"


@pytest.mark.parametrize("exercise", EXERCISES)
def test_stub_signature_matches_reference(exercise):
    notebook = CHAPTER_NOTEBOOKS[REGISTRY[exercise].chapter]
    sources = {defined_name(c.source): c.source for c in exercise_cells(nbformat.read(notebook, as_version=4))}
    assert stub_signature(sources[exercise]) == expected_signature(REGISTRY[exercise])


# ---------------------------------------------------------------------------------------------
# The recorded reference outputs (autograder/expected/) and when they are stale.
#
# A recording made on one CPU differs from the reference run on another by float32 summation
# order (~1e-5 relative), which is not staleness. Each recorded value is therefore compared with
# a tolerance taken from the checks themselves: RECORDING_FRACTION of the (atol, rtol) that the
# public checks apply when they compare a learner's output with that value (the tightest such
# tolerance in the chapter where a value is only used through `expect`). A recording within it
# leaves a correct learner the other 3/4 of every check's tolerance for their own CPU and
# implementation; a retrained model or an edited reference moves outputs far beyond it.
# Why not a tenth: torch's kernels without SIMD (ATEN_CPU_CAPABILITY=default
# MKL_ENABLE_INSTRUCTIONS=SSE4_2, a stand-in for another CPU) move decompose_residual by 0.70 and
# token_losses/on_the_model by 0.43 of this allowance, i.e. 17% and 11% of those checks' tolerance.
# ---------------------------------------------------------------------------------------------

RECORDING_FRACTION = 0.25
STALE = "run `python -m autograder.record`"


@contextmanager
def _comparisons_logged():
    """Within the block, every ``expect_close`` a chapter's checks make is logged as
    ``(expected, atol, rtol)`` with expect_close's defaults filled in."""
    original, logged = core.expect_close, []
    signature = inspect.signature(original)

    def logging_expect_close(actual, expected, *args, **kwargs):
        bound = signature.bind(actual, expected, *args, **kwargs)
        bound.apply_defaults()
        logged.append((expected, bound.arguments["atol"], bound.arguments["rtol"]))
        return original(actual, expected, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        for name, module in list(sys.modules.items()):
            if name.startswith("autograder.ch") and getattr(module, "expect_close", None) is original:
                patch.setattr(module, "expect_close", logging_expect_close)
        yield logged


def _same_data(logged, leaf) -> bool:
    """``logged`` is ``leaf``, or a view of it (``.reshape(())``, ``.float()`` of a float32 ...)."""
    if logged is leaf:
        return True
    return (isinstance(logged, torch.Tensor) and isinstance(leaf, torch.Tensor) and leaf.numel() > 0
            and logged.numel() == leaf.numel() and logged.data_ptr() == leaf.data_ptr())


@lru_cache(maxsize=None)
def fresh_recording(chapter: str) -> tuple[dict, dict]:
    """The chapter's reference outputs recorded now, and per key one ``(atol, rtol)`` per leaf:
    the tightest tolerance with which a public check compares a learner's output with it."""
    with _comparisons_logged() as logged:
        fresh = record(chapter)["store"]
    applied = {}
    for key, value in fresh.items():
        applied[key] = [[(atol, rtol) for expected, atol, rtol in logged if _same_data(expected, leaf)]
                        for leaf in _leaves(value)]
    found = [t for per_leaf in applied.values() for leaf in per_leaf for t in leaf]
    default = (min(a for a, _ in found), min(r for _, r in found)) if found else (1e-5, 1e-4)
    tolerances = {key: [(min(a for a, _ in leaf), min(r for _, r in leaf)) if leaf else default for leaf in per_leaf]
                  for key, per_leaf in applied.items()}
    return fresh, tolerances


def _allowance(value: torch.Tensor, atol: float, rtol: float) -> torch.Tensor:
    return RECORDING_FRACTION * (atol + rtol * value.detach().double().abs())


def stale_outputs(fresh: dict, stored: dict, tolerances: dict) -> list[str]:
    """Why the recording ``stored`` no longer matches the reference outputs ``fresh``: one line per
    missing, extra or changed output (none when it is current)."""
    problems = []
    if set(fresh) != set(stored):
        problems.append(f"recorded keys differ: missing {sorted(set(fresh) - set(stored))}, "
                        f"no longer produced {sorted(set(stored) - set(fresh))}")
    for key in sorted(set(fresh) & set(stored)):
        new, old = _leaves(fresh[key]), _leaves(stored[key])
        if len(new) != len(old):
            problems.append(f"{key}: the reference returns {len(new)} values, the recording holds {len(old)}")
            continue
        for i, (a, b, (atol, rtol)) in enumerate(zip(new, old, tolerances[key], strict=True)):
            where = f"{key}[{i}]" if len(new) > 1 else key
            if isinstance(a, torch.Tensor) != isinstance(b, torch.Tensor):
                problems.append(f"{where}: {type(a).__name__} now, {type(b).__name__} recorded")
            elif isinstance(a, torch.Tensor):
                a = a.detach().cpu()
                if a.shape != b.shape or a.dtype != b.dtype:
                    problems.append(f"{where}: {tuple(a.shape)} {a.dtype} now, {tuple(b.shape)} {b.dtype} recorded")
                elif not a.is_floating_point():
                    if not torch.equal(a, b):
                        problems.append(f"{where}: {int((a != b).sum())} of {a.numel()} values changed")
                else:
                    error = (a.double() - b.double()).abs()
                    allowed = _allowance(b, atol, rtol)
                    if not bool((error <= allowed).all()):  # NaN never passes
                        worst = (error / allowed).max().item()
                        problems.append(f"{where}: max abs error {error.max().item():.3g} is {worst:.3g} times the "
                                        f"allowance {RECORDING_FRACTION} x (atol {atol:g} + rtol {rtol:g} x |value|)")
            elif isinstance(a, bool) or not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
                if a != b or type(a) is not type(b):
                    problems.append(f"{where}: {a!r} now, {b!r} recorded")
            elif not abs(a - b) <= RECORDING_FRACTION * (atol + rtol * abs(b)):
                problems.append(f"{where}: {a!r} now, {b!r} recorded")
    return problems


def perturbed(store: dict, tolerances: dict, fraction: float) -> dict:
    """``store`` with every floating-point value moved by ``fraction`` of its allowance, with
    alternating signs: the recording of a CPU whose rounding differs as much as that. (The
    allowance is judged at the moved value, which can be nearer 0: hence the 1 + f * rtol.)"""
    def move(value, tolerance):
        atol, rtol = tolerance
        scale = fraction / (1 + RECORDING_FRACTION * rtol)
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            signs = 1 - 2 * (torch.arange(value.numel()) % 2).reshape(value.shape)
            return (value.double() + scale * signs * _allowance(value, atol, rtol)).to(value.dtype)
        if isinstance(value, float):
            return value + scale * RECORDING_FRACTION * (atol + rtol * abs(value))
        return value

    out = {}
    for key, value in store.items():
        if isinstance(value, (tuple, list)):
            out[key] = tuple(move(v, t) for v, t in zip(value, tolerances[key], strict=True))
        else:
            out[key] = move(value, tolerances[key][0])
    return out


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_recorded_reference_outputs_are_current(chapter):
    """Public checks in the learner distribution replay these; they must match the references."""
    fresh, tolerances = fresh_recording(chapter)
    problems = stale_outputs(fresh, load(chapter), tolerances)
    assert not problems, "the recording is stale: " + STALE + "\n" + "\n".join(problems)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_a_recording_off_by_the_tolerance_is_current_and_passes_the_reference(chapter):
    """The tolerance is safe: a recording that differs from this CPU's reference by (almost) all
    of it is judged current, and the reference still passes every public check replaying it."""
    fresh, tolerances = fresh_recording(chapter)
    shifted = perturbed(fresh, tolerances, 0.99)
    assert not stale_outputs(fresh, shifted, tolerances)
    assert stale_outputs(fresh, perturbed(fresh, tolerances, 1.5), tolerances)
    for exercise in (e for e in EXERCISES if REGISTRY[e].chapter == chapter):
        result = run_checks(reference(exercise), REGISTRY[exercise], mode="replay", store=shifted)
        assert result.passed, failures(result)


def test_an_edited_reference_is_reported_stale(monkeypatch):
    """A reference output edited by just over the tolerance is reported, by key, and one edited by
    half of it (CPU-sized noise) is not; so are an output with more values than recorded (which
    zip() would have truncated) and a key that appears or disappears."""
    import autograder.record

    chapter, key = "ch00_how_it_works", "causal_attention_pattern/matches_reference/0"
    fresh, tolerances = fresh_recording(chapter)

    def recorded_with_reference_edited(by: float) -> dict:
        class EditedReference(core.Reference):
            def apply(self, compute):
                def edited(reference):
                    out = compute(reference)
                    return out + by * _allowance(out, *tolerances[key][0]).to(out.dtype)
                return super().apply(edited)

        with monkeypatch.context() as patch:
            patch.setattr(autograder.record, "Reference", EditedReference)
            return record(chapter)["store"]

    assert [p.split(":")[0] for p in stale_outputs(recorded_with_reference_edited(1.5), fresh, tolerances)] == [key]
    assert stale_outputs(recorded_with_reference_edited(0.5), fresh, tolerances) == []
    assert stale_outputs({key: (fresh[key], fresh[key])}, fresh, {key: tolerances[key] * 2}) == [
        f"{key}: the reference returns 2 values, the recording holds 1"]
    assert "missing ['x/y/0']" in stale_outputs({**fresh, "x/y/0": 1.0}, fresh, {**tolerances, "x/y/0": [(0, 0)]})[0]
    assert "no longer produced ['x/y/0']" in stale_outputs(fresh, {**fresh, "x/y/0": 1.0}, tolerances)[0]


@pytest.mark.parametrize("exercise", EXERCISES)
def test_reference_passes_public_checks_from_recorded_outputs(exercise):
    """What a learner without solutions/ gets: the replayed outputs accept the reference."""
    entry = REGISTRY[exercise]
    result = run_checks(reference(exercise), entry, mode="replay", store=load(entry.chapter))
    assert result.passed, failures(result)


def _leaves(value):
    return [x for item in value for x in _leaves(item)] if isinstance(value, (tuple, list)) else [value]
