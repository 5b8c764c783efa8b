"""Shared fixtures: the exercise registry, learner stubs and wrong implementations."""
import importlib

import pytest
import torch

from autograder.core import load_all_chapters
from course.notebooks import chapter_notebooks, module_name, stubs

REGISTRY = load_all_chapters()
CHAPTER_NOTEBOOKS = {module_name(nb): nb for nb in chapter_notebooks()}


def wrong_implementations(chapter: str) -> dict:
    try:
        return importlib.import_module(f"tests.wrong.{chapter}").WRONG
    except ModuleNotFoundError:
        return {}


def assert_checks_hold(reference, exercise: str, wrongs: list) -> None:
    """The reference passes every check of ``exercise`` (hidden ones too) and each wrong version
    fails at least one: run on the second model, this shows the checks fit any model shape."""
    from autograder.core import run_checks

    result = run_checks(reference, REGISTRY[exercise], include_hidden=True)
    assert result.passed, "\n".join(f"{r.name}: {r.message}" for r in result.results if not r.passed)
    for wrong in wrongs:
        assert not run_checks(wrong, REGISTRY[exercise], include_hidden=True).passed, \
            f"{wrong.__name__} passes on the second model"


@pytest.fixture(scope="session")
def learner_stubs():
    """Every stub from every learner notebook, by exercise name."""
    found = {}
    for notebook in CHAPTER_NOTEBOOKS.values():
        found.update(stubs(notebook))
    return found


def _torch_globals() -> dict:
    return {"thread count": torch.get_num_threads(), "default dtype": torch.get_default_dtype(),
            "grad mode": torch.is_grad_enabled()}


def _fail_unless_restored(before: dict, who: str) -> None:
    after = _torch_globals()
    if after != before:
        torch.set_num_threads(before["thread count"])  # restored, so that later tests are unaffected
        torch.set_default_dtype(before["default dtype"])
        torch.set_grad_enabled(before["grad mode"])
        changed = ", ".join(f"{k} {before[k]} -> {after[k]}" for k in before if before[k] != after[k])
        pytest.fail(f"{who} left torch's global state changed ({changed}): a fixture that sets it must "
                    "restore it in its teardown", pytrace=False)


@pytest.fixture(autouse=True)
def torch_globals_restored_by_each_test(request):
    """Fails a test that, with its function-scoped fixtures, leaves torch's globals changed."""
    before = _torch_globals()
    yield
    _fail_unless_restored(before, request.node.nodeid)


@pytest.fixture(autouse=True, scope="module")
def torch_globals_restored_by_each_module(request):
    """The same for a module's module-scoped fixtures (reported at the module's last test)."""
    before = _torch_globals()
    yield
    _fail_unless_restored(before, f"{request.node.nodeid} (a module-scoped fixture)")


@pytest.fixture(scope="module")
def second_model(tmp_path_factory):
    """A differently shaped GPT-2-architecture model with random weights, as the check model:
    chapter tests use it to prove their checks hard-wire no size of the default model."""
    import os

    from autograder.core import CHECK_MODEL_VARIABLE, check_model
    from utils.models import DEFAULT_MODEL, MODELS_DIR, cached_model, random_model

    folder = tmp_path_factory.mktemp("second_model")
    tokenizer_from = os.environ.get(CHECK_MODEL_VARIABLE) or MODELS_DIR / DEFAULT_MODEL
    random_model(folder, n_layers=3, d_model=48, n_heads=6, n_ctx=96, seed=1, tokenizer_from=tokenizer_from)
    before = os.environ.get(CHECK_MODEL_VARIABLE)
    os.environ[CHECK_MODEL_VARIABLE] = str(folder)
    cached_model.cache_clear()
    yield check_model()
    if before is None:
        del os.environ[CHECK_MODEL_VARIABLE]
    else:
        os.environ[CHECK_MODEL_VARIABLE] = before
    cached_model.cache_clear()
