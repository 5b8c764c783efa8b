"""Every check can pass and can fail: reference, stub and realistic wrong implementations.

These tests are generic: a chapter adds checks in ``autograder/chNN_name.py``, references in
``solutions/chNN_name.py``, stubs in its notebook and wrong implementations in
``tests/wrong/chNN_name.py``, and is covered here without writing a test of its own.
"""
import pytest
import torch

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


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_recorded_reference_outputs_are_current(chapter):
    """Public checks in the learner distribution replay these; they must match the references."""
    fresh = record(chapter)["store"]
    stored = load(chapter)
    assert sorted(fresh) == sorted(stored), "recorded keys differ: run `python -m autograder.record`"
    for key, value in fresh.items():
        for new, old in zip(_leaves(value), _leaves(stored[key])):
            if isinstance(new, torch.Tensor):
                torch.testing.assert_close(new.cpu(), old, msg=f"{key} is stale: run `python -m autograder.record`")
            else:
                assert new == pytest.approx(old), f"{key} is stale: run `python -m autograder.record`"


@pytest.mark.parametrize("exercise", EXERCISES)
def test_reference_passes_public_checks_from_recorded_outputs(exercise):
    """What a learner without solutions/ gets: the replayed outputs accept the reference."""
    entry = REGISTRY[exercise]
    result = run_checks(reference(exercise), entry, mode="replay", store=load(entry.chapter))
    assert result.passed, failures(result)


def _leaves(value):
    return [x for item in value for x in _leaves(item)] if isinstance(value, (tuple, list)) else [value]
