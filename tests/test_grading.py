"""Grading a class: every kind of bad submission scores zero for its exercise only, the batch
goes on, reruns resume, feedback hides hidden checks, and the release ships no solutions.

Two module-scoped runs grade generated submissions (tests/grading_fixtures) with short limits:
chapter 00 (one exercise) for broken and messy notebooks, feedback and reruns; chapter 04
(ten exercises) for hostile code, which sits in one exercise while the others are correct, so
that each case shows it costs only that exercise's points, and why.
"""
from __future__ import annotations

import csv
import importlib
import json
import os
import re
import subprocess
import sys
import time

import pytest
import torch

from autograder.grading import main
from autograder.grading.extract import extract
from autograder.grading.sandbox import ROOT
from tests.grading_fixtures.make_submissions import make_submissions

CHAPTER = "ch00_how_it_works"
# CPU seconds: short, yet a correct submission fits them however busy the machine is
FAST = ["--call-timeout", "4", "--exercise-timeout", "8", "--statement-timeout", "3", "--memory-mb", "1024",
        "--submission-timeout", "60", "-j", "2", "--quiet"]
HOSTILE = make_submissions.__globals__["HOSTILE"]
BROKEN = make_submissions.__globals__["BROKEN"]
MESSY = make_submissions.__globals__["MESSY"]
CASES = BROKEN + MESSY + ["correct", "stub", "partly_correct", "fake_pass", "write_outside"]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("grading")
    outside = base / "outside"
    outside.mkdir()
    subs, out = base / "submissions", base / "out"
    expected = make_submissions(CHAPTER, subs, outside=outside / "pwned.txt", cases=CASES)
    assert main([str(subs), "--chapter", "00_how_it_works", "--out", str(out), *FAST]) == 0
    rows = list(csv.reader((out / "gradebook.csv").open()))
    return {"subs": subs, "out": out, "expected": expected, "outside": outside, "rows": rows}


def _record(graded, student):
    return json.loads((graded["out"] / "records" / f"{student}.json").read_text())


def _scored(want: str, got: float, top: float) -> bool:
    return {"full": got == top, "zero": got == 0, "partial": 0 < got < top}[want]


@pytest.mark.parametrize("case", CASES)
def test_each_submission_scores_as_expected(graded, case):
    record = _record(graded, case)
    for exercise, want in graded["expected"][case].items():
        got, top = record["exercises"][exercise]["score"], record["exercises"][exercise]["max_score"]
        messages = [c["message"] for c in record["exercises"][exercise]["checks"] if not c["passed"]]
        assert _scored(want, got, top), (case, got, messages)


# Why each hostile exercise scores zero: the limit it hit or the call that was blocked (a pattern
# that every failed check of that exercise matches), not just any failure.
MEMORY = "ran out of memory|Cannot allocate memory"
REASONS = {
    "infinite_loop": "time limit of 10 CPU seconds: it used up its CPU time",
    "memory_bomb": MEMORY,
    "torch_memory_bomb": MEMORY,
    "fork_bomb": "os.fork is not allowed",
    "subprocess_bomb": "subprocess.Popen is not allowed",
    "posix_spawn": "os.posix_spawn is not allowed",
    "sys_exit": "SystemExit",
    "os_exit": "exit code 0",
    "kill_parent": "os.kill is not allowed",
    "fake_pass": "differs from the reference",
    "monkeypatch_torch": "differs from the reference",
    "monkeypatch_checker": "differs from the reference",
    "import_solutions": "No module named 'solutions",
    "read_solutions_file": "not allowed|No such file",
    "always_equal": "should be a torch.Tensor, got AlwaysEqual",
    "tensor_subclass_eq": "differs from the reference",
    "nan_output": "NaN or inf entries",
    "inf_output": "NaN or inf entries",
    "huge_output": f"too much data|{MEMORY}",  # 1.6 GB: the 1 GB memory limit comes first
    "write_outside": "is not allowed while grading|No such file",  # a private /tmp has no such folder
    "network": "socket.* is not allowed while grading",
    "missing_exercise": "not defined in your notebook",
    "syntax_error": "not defined in your notebook",  # and a note says why: see SAID_IN_NOTES
    "not_a_function": "should be a function or class",
}
SAID_IN_NOTES = {"syntax_error": "cell .* was skipped: SyntaxError"}
HOSTILE_LIMITS = ["--call-timeout", "10", "--exercise-timeout", "20", "--statement-timeout", "5", "--memory-mb", "1024",
                  "--submission-timeout", "120", "-j", "2", "--quiet"]


@pytest.fixture(scope="module")
def graded_hostile(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    subs, out = base / "submissions", base / "out"
    expected = make_submissions("ch04_superposition", subs, outside=base / "pwned.txt", cases=[*REASONS, "correct"])
    assert main([str(subs), "--chapter", "04_superposition", "--out", str(out), *HOSTILE_LIMITS]) == 0
    return {"expected": expected, "out": out, "outside": base / "pwned.txt",
            "records": {s: json.loads((out / "records" / f"{s}.json").read_text()) for s in expected}}


def test_every_hostile_case_is_graded():
    assert set(HOSTILE) | {"missing_exercise", "syntax_error", "not_a_function"} == set(REASONS)


@pytest.mark.parametrize("case", sorted(REASONS))
def test_hostile_code_costs_only_its_own_exercise_and_says_why(graded_hostile, case):
    record = graded_hostile["records"][case]
    assert "internal grader error" not in record["load"]["problems"], record["load"].get("grader_error")
    expected = graded_hostile["expected"][case]
    assert sum(want == "full" for want in expected.values()) == len(expected) - 1  # one exercise is hostile
    for exercise, want in expected.items():
        got, top = record["exercises"][exercise]["score"], record["exercises"][exercise]["max_score"]
        failed = [c["message"] for c in record["exercises"][exercise]["checks"] if not c["passed"]]
        assert _scored(want, got, top), (case, exercise, got, failed)
        if want == "zero":
            assert failed and all(re.search(REASONS[case], m) for m in failed), (case, failed)
    assert re.search(SAID_IN_NOTES.get(case, ""), " ".join(record["load"]["problems"])), record["load"]["problems"]
    assert not graded_hostile["outside"].exists()


def test_gradebook_has_a_row_per_submission_and_the_fixed_total(graded):
    header, maximum, *rows = graded["rows"]
    assert header[0] == "student" and header[-2:] == ["total", "notes"]
    assert maximum[0] == "MAX" and float(maximum[-3]) == 4.0 == float(maximum[header.index("total")])
    assert sorted(r[0] for r in rows) == sorted(graded["expected"])


def test_record_is_auditable(graded):
    record = _record(graded, "correct")
    source = (graded["subs"] / "correct.ipynb").read_bytes()
    import hashlib

    assert record["submission_sha256"] == hashlib.sha256(source).hexdigest()
    files = record["grader"]["files"]
    assert files["autograder/ch00_how_it_works.py"] == hashlib.sha256(
        (ROOT / "autograder" / "ch00_how_it_works.py").read_bytes()).hexdigest()
    assert {"python", "torch", "transformer-lens"} <= set(record["grader"]["versions"])
    assert all("seconds" in c for c in record["exercises"]["causal_attention_pattern"]["checks"])
    assert record["score"] == record["max_score"] == 4


def test_feedback_hides_hidden_checks_and_learner_output(graded):
    hidden_source = "torch.randn(3, 2, 9, 9) * 10"
    for case in ("stub", "fake_pass", "correct"):
        for suffix in ("md", "html"):
            page = (graded["out"] / "feedback" / f"{case}.{suffix}").read_text()
            assert "fresh_random_scores" in page  # by name only
            assert hidden_source not in page and "def check_" not in page and "masked_fill" not in page
            assert "all checks passed" not in page and "4/4 points" not in page
    stub = (graded["out"] / "feedback" / "stub.md").read_text()
    assert "Hidden check: it tests the same specification" in stub
    assert "not implemented yet" in stub and "**Score: 0 / 4**" in stub
    assert "| matches_reference | FAIL |" in stub


def test_learner_cannot_write_outside_or_touch_the_output(graded):
    assert not (graded["outside"] / "pwned.txt").exists()
    for record in (graded["out"] / "records").glob("*.json"):
        json.loads(record.read_text())  # every record intact


def test_rerun_skips_graded_and_only_regrades_one(graded):
    out, subs = graded["out"], graded["subs"]
    before = {p.name: p.stat().st_mtime_ns for p in (out / "records").glob("*.json")}
    assert main([str(subs), "--chapter", "00_how_it_works", "--out", str(out), *FAST]) == 0
    assert before == {p.name: p.stat().st_mtime_ns for p in (out / "records").glob("*.json")}  # nothing regraded
    assert main([str(subs), "--chapter", "00_how_it_works", "--out", str(out), "--only", "correct", "--regrade",
                 *FAST]) == 0
    after = {p.name: p.stat().st_mtime_ns for p in (out / "records").glob("*.json")}
    assert [n for n in after if after[n] != before[n]] == ["correct.json"]
    # a changed submission is regraded without --regrade
    (subs / "stub.ipynb").write_bytes((subs / "correct.ipynb").read_bytes())
    assert main([str(subs), "--chapter", "00_how_it_works", "--out", str(out), *FAST]) == 0
    assert _record(graded, "stub")["score"] == 4


# ------------------------------------------------------------------------------ extraction


def _nb(*sources: str) -> bytes:
    return json.dumps({"cells": [{"cell_type": "code", "source": s, "metadata": {}} for s in sources],
                       "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()


def test_extraction_keeps_what_the_exercise_needs_and_strips_magics():
    program = extract(_nb("%matplotlib inline\nimport torch\nimport plotly.express as px",
                          "def f(x):\n    return x * SCALE + helper(x)",
                          "px.line([1, 2])\nfor step in range(10**9):\n    pass",
                          "!pip install foo\nSCALE = 2",
                          "def helper(x):\n    return torch.zeros_like(x)",
                          "%%bash\nrm -rf /"), ["f"])
    sources = [s.source for s in program.statements]
    assert sources[0] == "import torch"  # imports first; plotly is not needed
    assert not any("plotly" in s or "range(10**9)" in s or "rm -rf" in s for s in sources)
    assert "SCALE = 2" in sources and any(s.startswith("def helper") for s in sources)


# ------------------------------------------------------------------------------ protocol


def test_wire_rebuilds_plain_values_and_never_pickles():
    from autograder.grading import wire

    class Sneaky(torch.Tensor):
        def __eq__(self, other):
            return True

    value = {"a": [1, 2.5, float("nan"), "s", None, True], ("k", 1): (torch.arange(3).as_subclass(Sneaky),),
             "p": torch.nn.Parameter(torch.ones(2))}
    encoder = wire.Encoder()
    tree = encoder.encode(value)
    read, write = os.pipe()
    wire.send(write, {"v": tree}, encoder.tensors)
    header, tensors = wire.recv(read, time.monotonic() + 5)
    os.close(read), os.close(write)
    back = wire.decode(header["v"], tensors)
    assert type(back[("k", 1)][0]) is torch.Tensor and type(back["p"]) is torch.Tensor
    assert back["a"][:2] == [1, 2.5] and back["a"][3:] == ["s", None, True]
    with pytest.raises(TypeError):
        wire.Encoder().encode(object())


def test_class_exercises_work_through_remote_handles(tmp_path):
    """A class constructed by impl(...) stays in the sandbox; methods go through call()."""
    from autograder.core import CheckFailure, call
    from autograder.grading.sandbox import ExerciseSession, Limits, RemoteFunction, Sandbox

    program = extract(_nb("import torch",
                          "class Counter:\n    def __init__(self, start):\n        self.value = torch.tensor(start)\n"
                          "    def add(self, x):\n        self.value = self.value + x\n        return self.value\n"
                          "    def __eq__(self, other):\n        return True",
                          "def clobber(x):\n    x.mul_(0)\n    return x"), ["Counter", "clobber"])
    sandbox = Sandbox(program.to_json(), ["Counter", "clobber"], {}, Limits(call_s=5, exercise_s=20),
                      scratch=tmp_path, preimport=["torch"])
    try:
        loaded = sandbox.start()
        assert loaded["exercises"]["Counter"] == {"kind": "class", "type": "type", "signature": ["start"]}
        counter = RemoteFunction(ExerciseSession(sandbox, "Counter"), loaded["exercises"]["Counter"])(1.0)
        assert call(counter.add, torch.tensor(2.0)).item() == 3.0
        assert type(counter.value) is torch.Tensor and counter.value.item() == 3.0
        assert counter != 5 and type(counter).__name__ == "Counter"  # the learner's __eq__ never runs here
        clobber = RemoteFunction(ExerciseSession(sandbox, "clobber"), loaded["exercises"]["clobber"])
        x = torch.ones(3)
        with pytest.raises(CheckFailure, match="in place"):
            call(clobber, x, name="clobber")
    finally:
        sandbox.close()


# ------------------------------------------------------------------------------ release


def test_release_has_public_checks_that_work_and_no_solutions_or_hidden_checks(tmp_path):
    from course.release import release

    out = tmp_path / "dist"
    release(out)
    assert not any((out / n).exists() for n in ("solutions", "tests", "solved", ".git"))
    # no grading tools: only the notebook reader that autograder.progress uses
    assert sorted(p.name for p in (out / "autograder" / "grading").iterdir()) == ["__init__.py", "extract.py"]
    for module in (out / "autograder").glob("ch*.py"):
        assert "hidden=True" not in module.read_text(), module
    reference = (ROOT / "solutions" / f"{CHAPTER}.py").read_text()
    script = f"""
import sys
try:
    import solutions
    raise SystemExit("solutions importable")
except ModuleNotFoundError:
    pass
import autograder
assert autograder.__file__.startswith({str(out)!r}), autograder.__file__
from autograder import check
from autograder.core import REGISTRY
ns = {{}}
exec({reference!r}, ns)
result = check(ns["causal_attention_pattern"], quiet=True)
assert result.passed and len(result.results) == 3, result.report()
assert not any(c.hidden for e in REGISTRY.values() for c in e.checks)
wrong = check(lambda scores: scores.softmax(-1), "causal_attention_pattern", quiet=True)
assert not wrong.passed
print("released check ok")
"""
    # -S: no site hooks, so the course repository's editable install cannot supply `solutions`
    import sysconfig

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(out), sysconfig.get_paths()["purelib"]]))
    done = subprocess.run([sys.executable, "-S", "-c", script], cwd=out, capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0 and "released check ok" in done.stdout, done.stdout + done.stderr


# ------------------------------------------------------------------------------ language-model chapters

# Chapters whose checks pass the model from check_model() and ActivationCache objects to the
# learner's code: the model crosses the wire by name, caches as tensors; hooks the learner's code
# leaves on the sandbox's copy of the model get no-op stand-ins on the grader's copy for the
# checks to see, and a call that leaves its weights changed fails (they never reach the grader's
# model, whose references must stay the reference's); both are reset after each exercise.
# CPU seconds for chapters whose checks run the language model: roomy, as each check runs it many times
MODEL_LIMITS = ["--call-timeout", "20", "--exercise-timeout", "60", "--statement-timeout", "20",
                "--submission-timeout", "240", "-j", "2", "--quiet"]
MODEL_CHAPTERS = {
    "ch01_circuits": ["correct", "model_left_changed", "hook_left_for_later", "os_exit", "monkeypatch_torch"],
    "ch02_induction_heads": ["correct", "model_left_changed"],
    "ch03_activation_patching": ["correct", "model_left_changed"],
    "ch06_steering": ["correct", "model_left_changed"],
}
LEFT_HOOKS = {"ch02_induction_heads": ("repeat_loss_with_ablation", "leaves_no_hooks_behind"),
              "ch03_activation_patching": ("patch_residual_stream", "leaves_no_hooks_behind"),
              "ch06_steering": ("steered_logits", "leaves_no_hooks")}
"""The exercise whose model_left_changed case leaves hooks on, and the check that must see them."""


@pytest.fixture(scope="module", params=sorted(MODEL_CHAPTERS))
def graded_lm(request, tmp_path_factory):
    from utils.models import MODELS_DIR, DEFAULT_MODEL

    assert os.environ.get("COURSE_CHECK_MODEL") or (MODELS_DIR / DEFAULT_MODEL / "model.safetensors").exists()
    module = request.param
    base = tmp_path_factory.mktemp(module)
    subs, out = base / "submissions", base / "out"
    expected = make_submissions(module, subs, outside=base / "pwned.txt", cases=MODEL_CHAPTERS[module])
    assert main([str(subs), "--chapter", module, "--out", str(out), *MODEL_LIMITS]) == 0
    records = {s: json.loads((out / "records" / f"{s}.json").read_text()) for s in expected}
    return {"module": module, "expected": expected, "records": records}


def _failed_checks(record, exercise):
    return {c["name"]: c["message"] for c in record["exercises"][exercise]["checks"] if not c["passed"]}


def test_language_model_chapter_scores(graded_lm):
    for case, exercises in graded_lm["expected"].items():
        record = graded_lm["records"][case]
        assert not record["load"]["problems"], (case, record["load"])
        for exercise, want in exercises.items():
            got, top = record["exercises"][exercise]["score"], record["exercises"][exercise]["max_score"]
            assert _scored(want, got, top), (graded_lm["module"], case, exercise, got, _failed_checks(record, exercise))


def test_hooks_and_weights_left_on_the_sandbox_model_are_seen_by_the_checks(graded_lm):
    record = graded_lm["records"]["model_left_changed"]
    if graded_lm["module"] == "ch01_circuits":
        failed = _failed_checks(record, "residual_norms")
        assert list(failed) == ["leaves_no_hooks"] and "left hooks on the model at" in failed["leaves_no_hooks"]
        failed = _failed_checks(record, "ablation_loss_change")  # every call left the weights changed
        assert failed and all("left the model's weights changed" in m for m in failed.values()), failed
    else:
        exercise, check = LEFT_HOOKS[graded_lm["module"]]
        failed = _failed_checks(record, exercise)
        assert list(failed) == [check], failed


def test_what_one_exercise_leaves_on_the_model_does_not_spoil_the_next(graded_lm):
    if graded_lm["module"] != "ch01_circuits":  # the one exercise that left hooks loses points, no other
        record = graded_lm["records"]["model_left_changed"]
        spoiled = [e for e, r in record["exercises"].items() if r["score"] < r["max_score"]]
        assert spoiled == [LEFT_HOOKS[graded_lm["module"]][0]], spoiled
        return
    record = graded_lm["records"]["hook_left_for_later"]  # attention_pattern leaves a hook zeroing layer 0
    assert list(_failed_checks(record, "attention_pattern")) == ["matches_the_cached_pattern"]
    assert record["score"] == record["max_score"] - 1
    restarted = graded_lm["records"]["os_exit"]  # the child died in the first exercise: a fresh one, same model
    assert restarted["load"]["sandbox"]["starts"] == 2
    assert restarted["score"] == restarted["max_score"] - restarted["exercises"]["attention_pattern"]["max_score"]


def test_reference_cache_is_exact_and_skips_what_it_cannot_key():
    from autograder.core import REGISTRY, load_all_chapters
    from autograder.grading import references

    load_all_chapters()
    exercise = next(e for e in REGISTRY.values() if e.chapter == CHAPTER)
    public = next(c for c in exercise.checks if not c.hidden)
    references.CACHE.clear()

    def reference():
        return references.CachedReference(exercise.name, public.name, "live")

    scores = torch.randn(2, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    first = reference()(scores)
    hits = references.STATS["hits"]
    again = reference()(scores)
    assert references.STATS["hits"] == hits + 1 and torch.equal(first, again) and again is not first
    again.zero_()  # a check that changes the value it got does not change the cache
    assert torch.equal(reference()(scores), first)
    assert not torch.equal(reference()(scores + 1), first)  # other arguments: another entry
    # the global random state is part of the answer when the reference uses it
    draw = lambda f: torch.rand(3)  # noqa: E731
    torch.manual_seed(1)
    a = reference().apply(draw)
    after_a = torch.rand(1)
    torch.manual_seed(2)
    b = reference().apply(draw)
    assert not torch.equal(a, b)
    torch.manual_seed(1)
    assert torch.equal(reference().apply(draw), a) and torch.equal(torch.rand(1), after_a)
    # something it cannot digest is computed live, never cached
    before = references.STATS["uncacheable"]
    reference().apply(lambda f, o=object(): f(scores))
    assert references.STATS["uncacheable"] == before + 1


def test_sandbox_imports_the_public_checks_only_even_from_the_zygote(tmp_path):
    """The zygote imports third-party packages before the child hides anything, so a notebook
    that imports a chapter's check module must still get the copy without hidden checks."""
    from autograder.grading.grade import Paths, _preimports, _sandbox_views, load_chapter
    from autograder.grading.sandbox import ExerciseSession, Limits, RemoteFunction, Sandbox

    program = extract(_nb("import torch\nfrom autograder.ch00_how_it_works import *",
                          "def names():\n    from autograder.core import REGISTRY\n"
                          "    return sorted(c.name for e in REGISTRY.values() for c in e.checks)"), ["names"])
    hide, hide_files, overlay = _sandbox_views(load_chapter("00_how_it_works"), Paths(tmp_path / "out"),
                                               tmp_path / "subs", tmp_path)
    sandbox = Sandbox(program.to_json(), ["names"], {}, Limits(call_s=10, exercise_s=20), scratch=tmp_path,
                      hide=hide, hide_files=hide_files, overlay=overlay, preimport=_preimports(program))
    try:
        loaded = sandbox.start()
        names = RemoteFunction(ExerciseSession(sandbox, "names"), loaded["exercises"]["names"])()
    finally:
        sandbox.close()
    assert "fresh_random_scores" not in names
    if sandbox.namespaces:
        assert "matches_reference" in names, names


# ------------------------------------------------------------------------------ tensor chapters

# Chapters whose exercises take and return tensors (their checks build the inputs, some from the
# check model): graded as a class, the solved notebook earns every point, and one with a wrong
# first exercise loses points there (some or all: its checks may all catch the mistake) and in no
# other exercise except those whose code calls it (the learner's own wrong function runs there too).
TENSOR_CHAPTERS = ["ch05_sparse_autoencoders", "ch07_automated_interpretability"]


@pytest.mark.parametrize("module", TENSOR_CHAPTERS)
def test_tensor_chapter_scores(module, tmp_path):
    subs, out = tmp_path / "submissions", tmp_path / "out"
    expected = make_submissions(module, subs, outside=tmp_path / "pwned.txt", cases=["correct", "partly_correct"])
    assert set(expected) == {"correct", "partly_correct"}, expected
    assert main([str(subs), "--chapter", module, "--out", str(out), *MODEL_LIMITS]) == 0
    references = importlib.import_module(f"solutions.{module}")
    wrong_one = next(e for e, want in expected["partly_correct"].items() if want == "partial")
    callers = {e for e in expected["partly_correct"] if wrong_one in getattr(references, e).__code__.co_names}
    for case, exercises in expected.items():
        record = json.loads((out / "records" / f"{case}.json").read_text())
        assert not record["load"]["problems"], (case, record["load"])
        for exercise, want in exercises.items():
            if case == "partly_correct" and exercise in callers:
                continue
            got, top = record["exercises"][exercise]["score"], record["exercises"][exercise]["max_score"]
            as_expected = got < top if want == "partial" else _scored(want, got, top)
            assert as_expected, (module, case, exercise, got, _failed_checks(record, exercise))
