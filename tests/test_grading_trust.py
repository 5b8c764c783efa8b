"""A grade depends only on its own submission, and nothing but a right answer earns it.

Each test grades generated submissions (learner notebooks with code substituted, as in
tests/grading_fixtures) and attacks one way a submission could pass without being right, or
change what another submission is graded on:

* changing the model's weights in the sandbox (the reference must not run on what the learner changed);
* replaying the recorded reference outputs that public checks ship with (hidden checks on fresh inputs);
* changing a check's input tensors in place (inputs are copies, never written back);
* seeding torch's random generator (hidden inputs come from the grader's own seed per submission).

Submissions are graded one after the other in one process (``-j 1``), so that whatever one
could leak to the next would reach it.
"""
from __future__ import annotations

import ast
import base64
import copy
import inspect
import json
from pathlib import Path

import nbformat
import pytest
from safetensors.torch import save

from autograder.core import REGISTRY, load_all_chapters
from autograder.grading import main
from autograder.record import _flatten, load
from tests.grading_fixtures.make_submissions import chapter_material

load_all_chapters()
CHAPTERS = sorted({e.chapter for e in REGISTRY.values()})
LIMITS = ["--call-timeout", "20", "--exercise-timeout", "60", "--statement-timeout", "20", "--submission-timeout",
          "240", "-j", "1", "--quiet"]


# ------------------------------------------------------------------------------ submissions


def _notebook(module: str, **sources: str) -> nbformat.NotebookNode:
    """The chapter's learner notebook with every exercise solved by the reference, except those
    given in ``sources`` (exercise name -> the cell's code)."""
    nb, cells, solutions, _ = chapter_material(module)
    out = copy.deepcopy(nb)
    for name, index in cells.items():
        out.cells[index].source = sources.get(name, inspect.getsource(getattr(solutions, name)))
    return out


def _with_body(module: str, name: str, body: str) -> str:
    """The stub of exercise ``name`` (its signature) with ``body``, after the reference renamed
    ``_correct_<name>`` so that the body can call it."""
    nb, cells, solutions, _ = chapter_material(module)
    stub = ast.parse(nb.cells[cells[name]].source)
    function = next(n for n in stub.body if isinstance(n, ast.FunctionDef) and n.name == name)
    function.body = ast.parse(body).body
    reference = ast.parse(inspect.getsource(getattr(solutions, name)))
    reference.body[0].name = f"_correct_{name}"
    return f"{ast.unparse(reference)}\n\n\n{ast.unparse(stub)}\n"


def _call_correct(module: str, name: str) -> str:
    """``_correct_<name>(<the stub's parameters>)``."""
    nb, cells, _, _ = chapter_material(module)
    stub = ast.parse(nb.cells[cells[name]].source)
    function = next(n for n in stub.body if isinstance(n, ast.FunctionDef) and n.name == name)
    return f"_correct_{name}({', '.join(a.arg for a in function.args.args)})"


def _replay_cell(module: str) -> str:
    """A cell holding the chapter's recorded reference outputs (embedded, so it needs no file)
    and ``_replay(name)``, which returns exercise ``name``'s outputs in the order public checks
    call it (and raises once they run out)."""
    tensors, structure, order = {}, {}, {}
    store = load(module)
    for exercise in (e for e in REGISTRY.values() if e.chapter == module):
        order[exercise.name] = [key for check in exercise.checks
                                for key in sorted((k for k in store if k.startswith(f"{exercise.name}/{check.name}/")),
                                                  key=lambda k: int(k.rsplit("/", 1)[1]))]
    for key, value in store.items():
        _flatten(key, value, tensors, structure)
    data = base64.b64encode(save(tensors)).decode()
    return f'''import base64
from safetensors.torch import load as _load
_TENSORS = _load(base64.b64decode({data!r}))
_STRUCTURE = json.loads({json.dumps(structure)!r})
_ORDER = json.loads({json.dumps(order)!r})
_CALLS = {{}}


def _value(key):
    spec = _STRUCTURE[key]
    if spec == "tensor":
        return _TENSORS[key].clone()
    if spec[0] == "sequence":
        return tuple(_value(f"{{key}}#{{i}}") for i in range(spec[1]))
    return spec[1]


def _replay(name):
    k = _CALLS.get(name, 0)
    _CALLS[name] = k + 1
    return _value(_ORDER[name][k])
'''


def _replay_notebook(module: str) -> nbformat.NotebookNode:
    """Every exercise of the chapter answered from the recorded outputs, in call order."""
    nb, cells, _, _ = chapter_material(module)
    sources = {}
    for name, index in cells.items():
        stub = ast.parse(nb.cells[index].source)
        function = next(n for n in stub.body if isinstance(n, ast.FunctionDef) and n.name == name)
        function.body = ast.parse(f"return _replay({name!r})").body
        sources[name] = ast.unparse(stub)
    out = _notebook(module, **sources)
    out.cells.insert(0, nbformat.v4.new_code_cell("import json\nimport torch"))
    out.cells.insert(1, nbformat.v4.new_code_cell(_replay_cell(module)))
    return out


ZEROED = ("attention_pattern", "residual_norms")
ZERO_THE_WEIGHTS = """
with torch.no_grad():
    for parameter in model.parameters():
        parameter.zero_()
return {call}
"""
CLOBBERED = {  # ch02 exercise -> what it does to its inputs before answering correctly
    "repeated_random_tokens": "candidates.set_(candidates[:2])",
    "token_losses": "tokens.copy_(torch.zeros_like(tokens))",
    "induction_score": "tokens.resize_(1, 1)",
}
SEED_INSIDE = "torch.manual_seed(0)\nreturn {call}"
# right, but rounded differently from the reference (so the errors recorded depend on the inputs),
# and printing a digest of every input it is given
PROBE = """
print('input digest', float(scores.double().abs().sum()), tuple(scores.shape))
return _correct_causal_attention_pattern(scores.double()).float()
"""


def _write(folder: Path, student: str, notebook) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, folder / f"{student}.ipynb")


def _submissions(module: str, folder: Path) -> None:
    """The chapter's attacking submissions (and the correct ones graded after them)."""
    _write(folder, "replay", _replay_notebook(module))
    if module == "ch00_how_it_works":
        name = "causal_attention_pattern"
        _write(folder, "a_seeder", _notebook(module, **{name: _with_body(
            module, name, SEED_INSIDE.format(call=_call_correct(module, name)))}))
        _write(folder, "b_probe", _notebook(module, **{name: _with_body(module, name, PROBE)}))
    elif module == "ch01_circuits":
        _write(folder, "zeroed", _notebook(module, **{name: _with_body(
            module, name, ZERO_THE_WEIGHTS.format(call=_call_correct(module, name))) for name in ZEROED}))
    elif module == "ch02_induction_heads":
        _write(folder, "a_clobber", _notebook(module, **{name: _with_body(
            module, name, f"{change}\nreturn {_call_correct(module, name)}") for name, change in CLOBBERED.items()}))
        _write(folder, "b_correct", _notebook(module))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """grade(module) -> {student: record}, each chapter graded once."""
    done = {}

    def grade(module: str) -> dict:
        if module not in done:
            base = tmp_path_factory.mktemp(module)
            _submissions(module, base / "submissions")
            assert main([str(base / "submissions"), "--chapter", module, "--out", str(base / "out"), *LIMITS]) == 0
            done[module] = {"base": base, "records": _records(base / "out")}
        return done[module]

    return grade


def _records(out: Path) -> dict:
    return {p.stem: json.loads(p.read_text()) for p in (out / "records").glob("*.json")}


def _scores(record: dict) -> dict:
    return {name: (e["score"], e["max_score"]) for name, e in record["exercises"].items()}


def _failures(record: dict, exercise: str) -> dict:
    return {c["name"]: c["message"] for c in record["exercises"][exercise]["checks"] if not c["passed"]}


# ------------------------------------------------------------------------------ tests


def test_changing_the_weights_in_the_sandbox_earns_nothing(graded):
    """The zeroed model's answers match a reference run on the zeroed model: the reference must
    never run on weights the learner changed, so such a call fails (and only that exercise loses)."""
    record = graded("ch01_circuits")["records"]["zeroed"]
    for name, (score, top) in _scores(record).items():
        if name in ZEROED:
            assert score == 0, (name, _failures(record, name))
            assert any("left the model's weights changed" in m for m in _failures(record, name).values())
        else:
            assert score == top, (name, _failures(record, name))


@pytest.mark.parametrize("module", CHAPTERS)
def test_replaying_the_recorded_outputs_scores_zero(graded, module):
    """Hidden checks run first on fresh inputs, so answers replayed in call order pass no check at all."""
    record = graded(module)["records"]["replay"]
    passed = {name: [c["name"] for c in e["checks"] if c["passed"]] for name, e in record["exercises"].items()}
    assert not any(passed.values()), {name: checks for name, checks in passed.items() if checks}


def test_changing_inputs_in_place_does_not_reach_the_next_submission(graded):
    """set_, copy_ and resize_ on the inputs fail that call, and the correct submission graded next
    in the same process keeps full marks (they used to be written back into the check's tensors)."""
    records = graded("ch02_induction_heads")["records"]
    clobber = records["a_clobber"]
    for name in CLOBBERED:
        assert any("in place" in m for m in _failures(clobber, name).values()), _failures(clobber, name)
    correct = records["b_correct"]
    assert correct["score"] == correct["max_score"], {n: _failures(correct, n) for n in correct["exercises"]}


def _graded_the_same(a: dict, b: dict) -> None:
    """Same checks, messages, details and printed inputs (timings aside)."""

    def plain(record):
        return {name: [{k: v for k, v in c.items() if k != "seconds"} for c in e["checks"]]
                for name, e in record["exercises"].items()}

    assert plain(a) == plain(b)
    digests = [[line for line in r["load"]["output_tail"].splitlines() if "input digest" in line] for r in (a, b)]
    assert digests[0] == digests[1]


def test_seeding_the_random_generator_does_not_reach_the_next_submission(graded):
    """A probe graded after a submission that calls torch.manual_seed is given the same hidden inputs
    (and so the same record) as when graded alone, and a regrade repeats both records exactly."""
    run = graded("ch00_how_it_works")
    base, together = run["base"], run["records"]
    assert together["a_seeder"]["score"] == together["a_seeder"]["max_score"]
    alone = base / "alone"
    alone.mkdir()
    (alone / "b_probe.ipynb").write_bytes((base / "submissions" / "b_probe.ipynb").read_bytes())
    assert main([str(alone), "--chapter", "ch00_how_it_works", "--out", str(base / "out_alone"), *LIMITS]) == 0
    assert "input digest" in together["b_probe"]["load"]["output_tail"]
    _graded_the_same(together["b_probe"], _records(base / "out_alone")["b_probe"])
    assert main([str(base / "submissions"), "--chapter", "ch00_how_it_works", "--out", str(base / "out"),
                 "--regrade", *LIMITS]) == 0
    again = _records(base / "out")
    for student in ("a_seeder", "b_probe"):
        _graded_the_same(together[student], again[student])
