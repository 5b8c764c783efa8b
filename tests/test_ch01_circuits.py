"""Chapter 01: the references agree with TransformerLens, and every check runs on other shapes.

* Where TransformerLens computes the same quantity (``ActivationCache.decompose_resid``,
  ``stack_head_results``, ``apply_ln_to_stack``, ``head_detector.detect_head``), the reference
  gives the same numbers.
* Every check of the chapter passes on the reference with a differently shaped model
  (GPT-2-small shaped, and a small one with n_layers != n_heads), so nothing is hard-wired to the
  default model's sizes.
"""
import base64
import os

import numpy as np
import pytest
import torch
from transformer_lens.head_detector import detect_head

import solutions.ch01_circuits as S
from autograder.core import CHAPTER_MODELS, CHECK_MODEL_VARIABLE, REGISTRY, load_all_chapters, run_checks
from utils.models import cached_model, random_model

load_all_chapters()
EXERCISES = sorted(e for e, entry in REGISTRY.items() if entry.chapter == "ch01_circuits")
TOKENIZER = os.environ.get("CH01_TEST_TOKENIZER")  # default: the chapter's bundled model


@pytest.fixture(scope="module")
def model():
    torch.set_grad_enabled(False)
    yield cached_model(TOKENIZER or CHAPTER_MODELS["ch01_circuits"])
    torch.set_grad_enabled(True)


@pytest.fixture(scope="module")
def batch(model):
    from utils.ch01_circuits import text_batch

    tokens = text_batch(model, 4, 20, seed=5)
    _, cache = model.run_with_cache(tokens)
    return tokens, cache


def test_decompose_residual_agrees_with_decompose_resid(model, batch):
    _, cache = batch
    torch.testing.assert_close(S.decompose_residual(model, cache), cache.decompose_resid(), atol=1e-5, rtol=1e-5)


def test_head_results_agree_with_stack_head_results(model, batch):
    _, cache = batch
    ours = torch.stack([S.head_results(model, cache, l) for l in range(model.cfg.n_layers)])  # [l, b, p, h, m]
    theirs = cache.stack_head_results()  # [(l h), b, p, m], layer-major
    torch.testing.assert_close(ours.permute(0, 3, 1, 2, 4).flatten(0, 1), theirs, atol=1e-5, rtol=1e-5)


def test_logit_attribution_agrees_with_apply_ln_to_stack(model, batch):
    tokens, _ = batch
    _, cache = model.run_with_cache(tokens[:, :-1])
    answers = tokens[:, -1]
    stack = cache.apply_ln_to_stack(cache.stack_head_results(layer=-1, pos_slice=-1), layer=-1, pos_slice=-1)
    theirs = torch.einsum("cbm,mb->bc", stack, model.W_U[:, answers])
    ours = S.direct_logit_attribution(model, cache, answers)
    torch.testing.assert_close(ours.flatten(1), theirs, atol=1e-4, rtol=1e-4)


def test_logit_attribution_is_part_of_the_logits(model, batch):
    """Heads' direct effects plus every other component's, plus b_U, rebuild the logits."""
    tokens, _ = batch
    logits, cache = model.run_with_cache(tokens)
    answers = tokens[:, -1]
    rest = cache.decompose_resid(pos_slice=-1)  # includes each attention layer's output (heads + b_O)
    rest = cache.apply_ln_to_stack(rest, layer=-1, pos_slice=-1)
    rebuilt = torch.einsum("cbm,mb->b", rest, model.W_U[:, answers]) + model.b_U[answers]
    torch.testing.assert_close(rebuilt, logits[torch.arange(len(answers)), -1, answers], atol=1e-3, rtol=1e-4)


def _detect(model, texts, pattern_for):
    """detect_head ("mul") averaged over prompts, rescaled to our definition, which skips query 0.

    detect_head divides the attention inside the detection pattern by all attention (n rows,
    each summing to 1); row 0 of our patterns holds forced attention a[0, 0] = 1 for current- and
    first-token patterns and nothing for the previous-token pattern.
    """
    scores = []
    for text in texts:
        n = model.to_tokens(text).shape[1]
        pattern, row0 = pattern_for(n)
        scores.append((detect_head(model, text, pattern) * n - row0) / (n - 1))
    return torch.stack(scores).mean(0)


PATTERNS = {
    "previous_token_scores": lambda n: ("previous_token_head", 0.0),
    "current_token_scores": lambda n: (torch.eye(n), 1.0),
    "first_token_scores": lambda n: (torch.nn.functional.pad(torch.ones(n, 1), (0, n - 1)), 1.0),
}


@pytest.mark.parametrize("detector", sorted(PATTERNS))
def test_detectors_agree_with_detect_head(model, detector):
    from utils.ch01_circuits import TEN_PROMPTS

    texts = TEN_PROMPTS[:4]
    ours = []
    for text in texts:
        _, cache = model.run_with_cache(model.to_tokens(text))
        ours.append(getattr(S, detector)(model, cache))
    theirs = _detect(model, texts, PATTERNS[detector])
    torch.testing.assert_close(torch.stack(ours).mean(0), theirs.to(torch.float32), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("shape", [dict(n_layers=12, d_model=768, n_heads=12), dict(n_layers=3, d_model=48, n_heads=2)],
                         ids=["gpt2-small-shaped", "3-layers-2-heads"])
def test_every_check_passes_on_another_model(shape, tmp_path_factory, monkeypatch):
    folder = tmp_path_factory.mktemp("model")
    random_model(folder, n_ctx=128, tokenizer_from=TOKENIZER, **shape)
    monkeypatch.setenv(CHECK_MODEL_VARIABLE, str(folder))
    cached_model.cache_clear()
    try:
        for exercise in EXERCISES:
            result = run_checks(getattr(S, exercise), REGISTRY[exercise], include_hidden=True)
            failed = [f"{r.name}: {r.message}" for r in result.results if not r.passed]
            assert not failed, f"{exercise} on {shape}: {failed}"
    finally:
        cached_model.cache_clear()


def plotted(output) -> dict:
    """The one figure an explorer's output shows, as plotly JSON."""
    assert len(output.outputs) == 1, f"{len(output.outputs)} outputs: a redraw must replace the figure, not add one"
    return output.outputs[0]["data"]["application/vnd.plotly.v1+json"]


def values(array) -> np.ndarray:
    """A plotly JSON array (a list, or a base64 typed array with dtype and shape) as numpy."""
    if isinstance(array, dict):
        flat = np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"])
        return flat.reshape([int(n) for n in str(array.get("shape", len(flat))).split(",")])
    return np.asarray(array)


def test_attention_explorer_shows_a_figure_and_redraws_headless():
    """Each change of text, layer or head redraws the chosen head's pattern on the chosen text,
    replacing the figure before it (no kernel here: what the widget holds is what it shows)."""
    from utils.ch01_circuits import attention_explorer
    from utils.models import load_model

    model = load_model()
    assert model.cfg.n_layers >= 2 and model.cfg.n_heads >= 2

    def pattern(text, layer, head):
        with torch.no_grad():
            _, cache = model.run_with_cache(model.to_tokens(text))
        return cache["pattern", layer][0, head].numpy()

    text = "The capital of France is"
    explorer = attention_explorer(model, text, layer=0, head=0)
    text_box, sliders, output = explorer.children
    layer_slider, head_slider = sliders.children
    shown = []
    for layer, head in [(0, 0), (0, 1), (1, 1), (1, 0), (0, 0)]:
        layer_slider.value, head_slider.value = layer, head
        figure = plotted(output)
        assert figure["layout"]["title"]["text"] == f"Head L{layer}H{head}"
        np.testing.assert_allclose(values(figure["data"][0]["z"]), pattern(text, layer, head), atol=1e-6)
        shown.append(values(figure["data"][0]["z"]))
    assert not np.allclose(shown[0], shown[1]) and not np.allclose(shown[1], shown[2])  # the redraws differ
    other = "When Mary and John went to the store, John gave a drink to"
    text_box.value = other
    np.testing.assert_allclose(values(plotted(output)["data"][0]["z"]), pattern(other, 0, 0), atol=1e-6)
