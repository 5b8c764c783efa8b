"""Chapter 02 beyond the generic check tests: agreement with TransformerLens's head detector,
every check on a second, differently shaped model, exact logit attribution, and the live
training run's phase change."""

import pytest
import torch

from autograder.core import REGISTRY, check_model, load_all_chapters
from tests.conftest import assert_checks_hold
from solutions import ch02_induction_heads as S
from tests.wrong.ch02_induction_heads import WRONG
from utils import ch02_induction_heads as U

load_all_chapters()
EXERCISES = sorted(e for e, entry in REGISTRY.items() if entry.chapter == "ch02_induction_heads")


def _repeat_batch(model, half_len=12, batch=3, seed=0):
    candidates = U.word_tokens(model, 400)
    return S.repeated_random_tokens(candidates, half_len, batch, model.tokenizer.bos_token_id, seed)


def test_scores_agree_with_transformer_lens_detect_head():
    """Our scores equal detect_head's 'mul' scores, renormalised from all query rows to the rows
    that have a target (detect_head divides by every row)."""
    from transformer_lens.head_detector import detect_head

    model = check_model()
    tokens = _repeat_batch(model)
    _, patterns = U.all_patterns(model, tokens)
    n = tokens.shape[1]
    for row in range(tokens.shape[0]):
        text = model.to_string(tokens[row, 1:])
        assert torch.equal(model.to_tokens(text)[0], tokens[row]), "round trip through a string changed the tokens"
        ours_ind = torch.stack([S.induction_score(p[row:row + 1], tokens[row:row + 1]) for p in patterns])
        ours_prev = torch.stack([S.previous_token_score(p[row:row + 1]) for p in patterns])
        theirs_ind = detect_head(model, text, "induction_head").to(ours_ind.dtype)
        theirs_prev = detect_head(model, text, "previous_token_head").to(ours_prev.dtype)
        torch.testing.assert_close(ours_ind, theirs_ind * n / 12, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(ours_prev, theirs_prev * n / (n - 1), atol=1e-5, rtol=1e-4)


def test_induction_score_agrees_with_detect_head_on_text_with_many_copies():
    """Tokens that recur several times at irregular distances (as in prose)."""
    from transformer_lens.head_detector import detect_head

    model = check_model()
    words = U.word_tokens(model, 6)[:6]
    g = torch.Generator().manual_seed(0)
    tokens = torch.cat([torch.tensor([model.tokenizer.bos_token_id]), words[torch.randint(0, 6, (25,), generator=g)]])[None]
    text = model.to_string(tokens[0, 1:])
    assert torch.equal(model.to_tokens(text), tokens)
    _, patterns = U.all_patterns(model, tokens)
    ours = torch.stack([S.induction_score(p, tokens) for p in patterns])
    same = (tokens[0, :, None] == tokens[0, None, :]).tril(-1)
    rows_with_target = same.any(-1).sum().item()  # queries with an earlier copy of their token
    theirs = detect_head(model, text, "induction_head").to(ours.dtype)
    torch.testing.assert_close(ours, theirs * tokens.shape[1] / rows_with_target, atol=1e-5, rtol=1e-4)


def test_head_logit_attribution_is_exact():
    """Embeddings + every head + biases, centred and scaled, give the model's logits."""
    model = check_model()
    tokens = _repeat_batch(model, batch=2)
    with torch.no_grad():
        logits, cache = model.run_with_cache(tokens)
    if "ln_final.hook_scale" not in cache.keys() or model.cfg.n_layers == 0:
        pytest.skip("model has no final LayerNorm")
    scale = cache["ln_final.hook_scale"]
    heads = sum(S.head_logit_attribution(cache["z", l], model.W_O[l], scale, model.W_U, tokens).sum(-1)
                for l in range(model.cfg.n_layers))
    rest = cache["hook_embed"] + model.b_O.sum(0)
    if "hook_pos_embed" in cache.keys():  # learned positions (GPT-2); rotary ones never enter the stream
        rest = rest + cache["hook_pos_embed"]
    if not getattr(model.cfg, "attn_only", False):
        rest = rest + sum(cache[f"blocks.{l}.hook_mlp_out"] for l in range(model.cfg.n_layers))
    rest = (rest - rest.mean(-1, keepdim=True)) / scale
    # the logit of the next token at each position
    target = logits[:, :-1].gather(-1, tokens[:, 1:, None])[..., 0]
    rest_logit = (rest[:, :-1] @ model.W_U + model.b_U).gather(-1, tokens[:, 1:, None])[..., 0]
    torch.testing.assert_close(heads.detach() + rest_logit.detach(), target.detach(), atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("exercise", EXERCISES)
def test_checks_on_a_second_model(second_model, exercise):
    assert second_model.cfg.n_heads == 6 and second_model.cfg.d_model == 48
    assert_checks_hold(getattr(S, exercise), exercise, WRONG[exercise])


def test_training_data_copies_at_varying_offsets():
    """No fixed offset predicts the copy: a single positional head cannot solve it."""
    tokens = U.induction_training_batch(64, 32, 64, torch.Generator().manual_seed(0))
    assert tokens.shape == (64, 32) and bool((tokens[:, 0] == 0).all())
    offsets = set()
    for row in tokens:
        for d in range(4, 32):
            if bool((row[d:d + 6] == row[:32 - d][:6]).all()) or any(
                    bool((row[s + d:s + d + 6] == row[s:s + 6]).all()) for s in range(1, 32 - d - 6)):
                offsets.add(d)
                break
    assert len(offsets) >= 8, offsets


@pytest.mark.slow
def test_live_training_shows_the_phase_change():
    evaluation = S.repeated_random_tokens(torch.arange(1, 64), 15, 32, bos=0, seed=1)
    model, history = U.train_induction_model(S.induction_score, S.previous_token_score, evaluation,
                                             steps=700, progress=False)
    best = history["induction"].flatten(1).max(-1).values
    assert best[0] < 0.2 and best[-1] > 0.6, best
    assert history["repeat_loss"][-1] < 0.5 * history["repeat_loss"][0]
    step = U.phase_change_step(history["step"], best)
    assert step is not None and 100 <= step <= 650, step
    # the induction heads are in layer 1, and the best previous-token head is in layer 0
    layer, _, _ = U.top_heads(history["induction"][-1], 1)[0]
    assert layer == 1
