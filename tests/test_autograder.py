"""The autograder answers bad input with a specific message, never a traceback from inside."""
import math
import sys
import types

import pytest
import torch

from autograder import check
from autograder.core import (CHECK_MODEL_VARIABLE, REGISTRY, Result, check_model_name, checking_chapter,
                             load_all_chapters, run_checks)


def messages(result: Result) -> str:
    return "\n".join(r.message for r in result.results)


def run(fn) -> Result:
    return check(fn, "causal_attention_pattern", quiet=True)


def causal_attention_pattern(scores):
    n = scores.shape[-1]
    return scores.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf")).softmax(-1)


def test_a_correct_implementation_passes_and_reports(capsys):
    result = check(causal_attention_pattern)
    assert result.passed and result.score == result.max_score
    printed = capsys.readouterr().out
    assert "causal_attention_pattern: all checks passed" in printed
    assert printed.count("PASS") == len([c for c in REGISTRY["causal_attention_pattern"].checks if not c.hidden])


def test_hidden_checks_do_not_run_in_the_notebook():
    names = {r.name for r in run(causal_attention_pattern).results}
    assert "fresh_random_scores" not in names


def test_wrong_signature_is_named():
    result = run(lambda x, y: x)
    assert not result.passed
    assert "should take parameters (scores), yours takes (x, y)" in messages(result)


def test_an_exception_in_learner_code_names_type_and_message():
    def causal_attention_pattern(scores):
        return scores @ torch.ones(3)

    text = messages(run(causal_attention_pattern))
    assert "raised RuntimeError" in text and "Traceback" not in text


def test_not_implemented_is_reported_as_such():
    def causal_attention_pattern(scores):
        raise NotImplementedError

    assert "not implemented yet" in messages(run(causal_attention_pattern))


def test_wrong_shape_reports_both_shapes():
    text = messages(run(lambda scores: causal_attention_pattern(scores)[..., 0]))
    assert "has shape" in text and "expected" in text


def test_wrong_dtype_is_named():
    text = messages(run(lambda scores: causal_attention_pattern(scores).double()))
    assert "dtype torch.float64, expected torch.float32" in text


def test_nan_and_inf_are_named():
    text = messages(run(lambda scores: causal_attention_pattern(scores) * math.nan))
    assert "NaN or inf" in text


def test_non_tensor_output_is_named():
    text = messages(run(lambda scores: causal_attention_pattern(scores).tolist()))
    assert "should be a torch.Tensor, got list" in text


def test_modifying_an_input_in_place_is_named():
    def causal_attention_pattern(scores):
        n = scores.shape[-1]
        return scores.masked_fill_(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf")).softmax(-1)

    assert "modified one of its input tensors in place" in messages(run(causal_attention_pattern))


def test_a_non_callable_is_named():
    assert "should be a function or class, got int" in messages(check(3, "causal_attention_pattern", quiet=True))


def test_unknown_exercise_lists_the_known_ones():
    with pytest.raises(LookupError, match="causal_attention_pattern"):
        check(lambda: None, "no_such_exercise", quiet=True)


NOTEBOOK_CELLS = [
    "import torch\nfrom autograder import check\n",
    "def causal_attention_pattern(scores):\n"
    "    n = scores.shape[-1]\n"
    "    return scores.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float('-inf')).softmax(-1)\n",
]


def test_check_leaves_the_callers_namespace_alone(monkeypatch):
    """A notebook's namespace is the module ``__main__``: its cells run in that module's
    ``__dict__``. Here the cells run in a fresh ``__main__``, as a kernel runs them, and
    ``check`` must leave that namespace as it found it (but for the cell's own assignment)."""
    notebook = types.ModuleType("__main__")
    monkeypatch.setitem(sys.modules, "__main__", notebook)
    namespace = notebook.__dict__
    for cell in NOTEBOOK_CELLS:
        exec(compile(cell, "<notebook cell>", "exec"), namespace)
    before = dict(namespace)
    exec(compile("result = check(causal_attention_pattern)\n", "<notebook cell>", "exec"), namespace)
    assert sys.modules["__main__"] is notebook
    added = namespace.keys() - before.keys() - {"result"}
    changed = [k for k, v in before.items() if k not in namespace or namespace[k] is not v]
    assert not added and not changed, f"check added {sorted(added)} to the notebook's namespace, changed {changed}"
    assert namespace["result"].passed


def test_replayed_outputs_grade_like_the_live_reference():
    from autograder.record import load

    wrong = run_checks(lambda scores: scores.softmax(-1), REGISTRY["causal_attention_pattern"], mode="replay",
                       store=load("ch00_how_it_works"))
    assert not wrong.passed and "causal mask" in messages(wrong)


def test_a_chapter_checks_on_its_registered_model_and_the_variable_overrides_it(monkeypatch):
    """Chapter 01 registers world-gpt2 (it reads learned positions); other chapters get the
    default (None); COURSE_CHECK_MODEL, which tests use for a second model, wins over both."""
    load_all_chapters()
    monkeypatch.delenv(CHECK_MODEL_VARIABLE, raising=False)
    assert check_model_name() is None
    with checking_chapter("ch01_circuits"):
        assert check_model_name() == "world-gpt2"
        with checking_chapter("ch02_induction_heads"):
            assert check_model_name() is None
        assert check_model_name() == "world-gpt2"
    assert check_model_name() is None
    seen = []

    def attention_pattern(model, tokens, layer, head):
        seen.append(check_model_name())

    run_checks(attention_pattern, REGISTRY["attention_pattern"])
    assert seen and set(seen) == {"world-gpt2"}
    monkeypatch.setenv(CHECK_MODEL_VARIABLE, "/some/other/model")
    with checking_chapter("ch01_circuits"):
        assert check_model_name() == "/some/other/model"
