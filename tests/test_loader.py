"""One loader for every model: bundled folders, local paths, and hub names offline."""
import subprocess
import sys
import time

import pytest

from utils.models import DEFAULT_MODEL, MODELS_DIR, ModelUnavailable, load_model, random_model


def test_a_hub_name_offline_fails_fast_with_one_clear_message(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    started = time.monotonic()
    with pytest.raises(ModelUnavailable) as error:
        load_model("gpt2-small")
    assert time.monotonic() - started < 5
    message = str(error.value)
    assert "gpt2-small" in message and "cache" in message and "bundled" in message


def test_offline_failure_in_a_fresh_interpreter_is_short():
    """What a learner sees: one error line at the end, no retry storm."""
    code = "from utils.models import load_model; load_model('pythia-70m')"
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HF_HOME": "/nonexistent-cache"}
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode != 0
    assert out.stderr.strip().splitlines()[-1].startswith("utils.models.ModelUnavailable: 'pythia-70m'")
    assert time.monotonic() - started < 30  # mostly the import of transformer_lens


def test_an_unknown_name_lists_what_exists():
    with pytest.raises(ValueError, match="gpt2-small"):
        load_model("no-such-model")


def test_a_random_model_of_another_shape_loads_through_the_same_path(tmp_path):
    model = random_model(tmp_path, n_layers=3, d_model=96, n_heads=6, n_ctx=64,
                         tokenizer_from=MODELS_DIR / DEFAULT_MODEL)
    assert (model.cfg.n_layers, model.cfg.d_model, model.cfg.n_heads) == (3, 96, 6)
    _, cache = model.run_with_cache("the capital of France is")
    assert cache["pattern", 2].shape[1] == 6
    assert model.to_str_tokens("the")[0] == model.tokenizer.bos_token


def test_the_default_model_is_a_bridge_in_compatibility_mode():
    model = load_model()
    _, cache = model.run_with_cache("The capital of France is")
    assert "blocks.0.attn.hook_pattern" in cache.keys()
    assert cache["pattern", 0].shape[-1] == cache["pattern", 0].shape[-2]
