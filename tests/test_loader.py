"""One loader for every model: bundled folders, local paths, and hub names offline.

"Fails fast" is asserted as behaviour, never in seconds (time budgets live in course/bench.py):
one connection attempt at most, and the error comes before the slow model machinery is touched.
"""
import socket
import subprocess
import sys
import textwrap

import pytest

from utils.models import DEFAULT_MODEL, MODELS_DIR, ModelUnavailable, load_model, random_model


def test_a_hub_name_offline_fails_fast_with_one_clear_message(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    attempts = []
    connect = socket.create_connection

    def counted(address, *args, **kwargs):
        attempts.append(address)
        return connect(address, *args, **kwargs)

    def never(*args, **kwargs):
        raise AssertionError("the loader went on to build a model for an unreachable hub name")

    from transformer_lens.model_bridge import TransformerBridge

    monkeypatch.setattr(socket, "create_connection", counted)
    monkeypatch.setattr(TransformerBridge, "boot_transformers", never)
    with pytest.raises(ModelUnavailable) as error:
        load_model("gpt2-small")
    assert attempts == [("127.0.0.1", 9)], "one connection attempt, and no retry"
    message = str(error.value)
    assert "gpt2-small" in message and "cache" in message and "bundled" in message


def test_offline_failure_in_a_fresh_interpreter_is_short():
    """What a learner sees: one error line at the end, no retry storm, no network touched, and no
    time spent importing TransformerLens for a model that cannot load."""
    code = textwrap.dedent("""
        import sys
        connections, NETWORK = [], ("socket.getaddrinfo", "socket.connect")
        sys.addaudithook(lambda event, args: connections.append(args) if event in NETWORK else None)
        try:
            from utils.models import load_model
            load_model('pythia-70m')
        finally:
            print(f"connections={len(connections)} transformer_lens={'transformer_lens' in sys.modules}")
    """)
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HF_HOME": "/nonexistent-cache"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=600)  # a guard against a hang, not a speed requirement
    assert out.returncode != 0
    assert out.stderr.strip().splitlines()[-1].startswith("utils.models.ModelUnavailable: 'pythia-70m'")
    assert out.stderr.count("Traceback") == 1 and "retry" not in out.stderr.lower(), out.stderr
    assert out.stdout.split() == ["connections=0", "transformer_lens=False"], out.stdout


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
