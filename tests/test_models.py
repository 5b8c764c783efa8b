"""The shipped models do what the chapters rely on, measured on held-out prompts.

Every figure comes from ``scripts/evaluate_models.py`` (the same code writes the model cards);
the thresholds are targets the training must reach, never to be loosened to make a test pass.
"""
import json
import random
from types import SimpleNamespace

import pytest
import torch
from transformers import AutoTokenizer

from scripts import evaluate_models as ev
from utils import world
from utils.models import DEFAULT_MODEL, MODELS_DIR, bundled_models, checkpoints, load_model

ATTN = "world-attn-2l"
GPT2 = "world-gpt2"  # chapter 01's model: GPT-2 blocks, learned positions in the residual stream
ZOO = (DEFAULT_MODEL, GPT2, ATTN)


@pytest.fixture(scope="module")
def default():
    return load_model(DEFAULT_MODEL)


@pytest.fixture(scope="module")
def ioi(default):
    """IOI figures of the default model, measured once for both IOI tests."""
    return ev.measure_ioi(default)


@pytest.fixture(scope="module")
def attn():
    return load_model(ATTN)


def test_zoo_is_bundled_in_hugging_face_format():
    assert set(ZOO) <= set(bundled_models())
    for name in ZOO:
        folder = MODELS_DIR / name
        for file in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                     "MODEL_CARD.md", "training_log.json"):
            assert (folder / file).is_file(), f"{name} lacks {file}"
    size = sum(p.stat().st_size for p in MODELS_DIR.rglob("*.safetensors"))
    assert size < 30e6, f"weights take {size / 1e6:.1f} MB, over the 30 MB budget"


def test_loads_as_float32_with_bos_prepended(default):
    assert next(default.parameters()).dtype == torch.float32
    assert default.tokenizer.bos_token == "<bos>"
    assert default.to_str_tokens("When Mary and John went to the store, John gave a drink to") == [
        "<bos>", "When", "Mary", "and", "John", "went", "to", "the", "store", ",", "John", "gave", "a",
        "drink", "to"]
    assert default.to_single_token(" Mary") == default.to_single_token("Mary")
    tokens, _ = ev.encode(default.tokenizer, ["The capital of Germany is"])
    assert torch.equal(default.to_tokens("The capital of Germany is"), tokens)


def test_accuracy_counts_exactly_so_a_target_met_is_met():
    correct = torch.tensor([True] * 190 + [False] * 10)
    assert ev.accuracy(correct) >= 0.95 and correct.float().mean().item() < 0.95
    assert ev.accuracy(torch.tensor([True] * 189 + [False] * 11)) < 0.95


MEASURES = {"ioi": ev.measure_ioi, "facts": ev.measure_facts, "greater_than": ev.measure_greater_than,
            "opinions": ev.measure_opinions}


@pytest.fixture(scope="module")
def training_text():
    """Documents written as ``scripts/train_models.py`` writes them (train split, each model's
    family weights and context length), 500 per model, one document a line."""
    from scripts.train_models import SPECS

    documents = []
    for name, spec in SPECS.items():
        rng = random.Random(world._stable_hash("held-out test", name))
        documents += [world.generate_document(rng, "train", min_words=spec.n_ctx,
                                              family_weights=dict(spec.family_weights) or None)
                      for _ in range(500)]
    return "\n".join(documents)


@pytest.mark.parametrize("family", MEASURES)
def test_measures_evaluate_held_out_prompts_only(family, training_text, monkeypatch):
    """What a measure runs the model on (recorded where it asks for logits) is its
    ``evaluation_prompts``; none of them occurs in training text, and each is of the test split
    by the rule the generators split on, so none can occur in any training text."""
    tokenizer = AutoTokenizer.from_pretrained(str(MODELS_DIR / DEFAULT_MODEL))
    evaluated = []

    def last_logits(model, prompts, batch_size=100):
        evaluated.extend(prompts)
        return torch.zeros(len(prompts), len(tokenizer))

    monkeypatch.setattr(ev, "last_logits", last_logits)
    MEASURES[family](SimpleNamespace(tokenizer_for_eval=tokenizer))  # a stand-in model: its tokenizer
    prompts = ev.evaluation_prompts(family)
    assert evaluated and evaluated == [p.prompt for p in prompts], f"{family}: not the evaluation prompts"
    leaked = [p.prompt for p in prompts if p.prompt in training_text]
    assert not leaked, f"{len(leaked)} {family} prompts occur in the training text, e.g. {leaked[:3]}"
    trained = [p.prompt for p in prompts if not world.held_out(p)]
    assert not trained, f"{len(trained)} {family} prompts are of the train split, e.g. {trained[:3]}"


def test_ioi_is_measured_on_fresh_draws_of_1200_prompts():
    """The IOI threshold holds on several draws pooled, none of which a chapter uses."""
    prompts = ev.evaluation_prompts("ioi")
    assert len(prompts) >= 1200 and len(ev.IOI_SEEDS) >= 3 and min(ev.IOI_SEEDS) > 100
    assert len({p.prompt for p in prompts}) > 0.9 * len(prompts)


def test_ioi_accuracy(ioi):
    assert ioi["ioi_accuracy"] >= 0.95, ioi


def test_ioi_logit_difference(ioi):
    assert ioi["ioi_logit_diff"] >= 3.0, ioi


def test_facts(default):
    figures = ev.measure_facts(default)
    assert figures["facts_accuracy"] >= 0.95, figures


def test_greater_than(default):
    figures = ev.measure_greater_than(default)
    assert figures["greater_than_prob_valid"] >= 0.9, figures


def test_opinions(default):
    figures = ev.measure_opinions(default)
    assert figures["opinions_accuracy"] >= 0.9, figures


@pytest.mark.parametrize("name", [DEFAULT_MODEL, ATTN])
def test_induction_on_repeated_random_words(name, default, attn):
    figures = ev.measure_induction(default if name == DEFAULT_MODEL else attn)
    assert figures["induction_loss_ratio"] <= 0.1, {k: v for k, v in figures.items() if k != "induction_scores"}


def test_chapter_01_model_adds_learned_positions_to_the_residual_stream():
    """What chapter 01 takes apart: a position embedding in the residual stream (rotary models
    have none), in a model that still knows its facts."""
    model = load_model(GPT2)
    assert tuple(model.pos_embed.W_pos.shape) == (model.cfg.n_ctx, model.cfg.d_model)
    _, cache = model.run_with_cache("The capital of Germany is")
    assert cache["hook_pos_embed"].abs().mean() > 0.01
    assert ev.measure_facts(model)["facts_accuracy"] >= 0.95


def test_chapter_01_model_has_a_previous_token_head():
    """Chapter 01 finds a previous-token head and reads its stripe from the weights: the best
    head scores at least 0.6 with the chapter's own detector on held-out text, and its
    positional-only pattern puts most of each row on the position before."""
    from solutions.ch01_circuits import positional_attention, previous_token_scores

    model = load_model(GPT2)
    figures = ev.measure_previous_token(model)
    _, cache = model.run_with_cache(ev.previous_token_batch(model.tokenizer))
    chapters = previous_token_scores(model, cache)
    torch.testing.assert_close(torch.tensor(figures["previous_token_scores"]), chapters, atol=1e-4, rtol=0)
    assert figures["previous_token_score_best"] >= 0.6, figures
    layer, head = map(int, figures["previous_token_best_head"].split("."))
    stripe = positional_attention(model, layer, head, 24).diagonal(offset=-1)[1:]
    assert stripe.mean() >= 0.5, f"L{layer}H{head}'s positional pattern puts only {stripe.mean():.2f} on the previous position"


def test_attention_only_model_has_no_mlp_output(attn):
    _, cache = attn.run_with_cache("When Mary and John went to the store")
    for layer in range(attn.cfg.n_layers):
        assert cache[f"blocks.{layer}.hook_mlp_out"].abs().max().item() == 0.0


def test_checkpoints_span_the_induction_phase_change():
    steps = checkpoints(ATTN)
    assert len(steps) >= 8 and steps[0] == 0
    scores = [ev.measure_induction(load_model(ATTN, checkpoint=s))["induction_score_best"]
              for s in (steps[0], steps[-1])]
    assert scores[0] < 0.1 and scores[1] > 0.5, dict(zip((steps[0], steps[-1]), scores))
    with pytest.raises(ValueError, match="no checkpoint"):
        load_model(ATTN, checkpoint=steps[-1] + 1)


def test_loss_curve_shows_the_bump():
    """A plateau, then a sharp drop: the loss on repeated random tokens (recorded during
    training) barely moves for a while, then loses most of its height in a short stretch."""
    log = json.loads((MODELS_DIR / ATTN / "training_log.json").read_text())["log"]
    steps = [e["step"] for e in log]
    loss = [e["induction_loss_repeat"] for e in log]
    height = loss[0] - min(loss)
    # the sharpest drop over a window of a tenth of training
    window = max(1, len(log) // 10)
    drop, at = max((loss[i] - loss[i + window], i) for i in range(len(log) - window))
    assert drop > 0.5 * height, f"no sharp drop: best {drop:.2f} of {height:.2f} within {window} evaluations"
    # before it, a plateau of at least a fifth of training where the loss moved little
    before = loss[: at + 1]
    assert at >= 2 * window and max(before) - min(before) < 0.2 * height, (
        f"no plateau before the drop at step {steps[at]}: the loss moved {max(before) - min(before):.2f}")
