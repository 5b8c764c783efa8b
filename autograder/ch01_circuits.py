"""Checks for chapter 01: circuits and the residual stream.

Every check takes its model from ``check_model()`` (here ``world-gpt2``) and derives sizes from
``model.cfg``, so the same checks run on the bundled model, on GPT-2 and on the differently
shaped models of the tests. Hidden checks draw fresh text, layers and heads from torch's global
generator, which the grader seeds for each submission and check (:func:`autograder.core.seeded_for`).
"""
from functools import lru_cache

import torch
from transformer_lens import ActivationCache

from autograder.core import CHAPTER_MODELS, check_model, checks, expect, expect_close, expect_tensor

# Chapter 01 reads learned position embeddings (W_pos, hook_pos_embed): GPT-2 blocks have them,
# the default model's rotary attention does not.
CHAPTER_MODELS["ch01_circuits"] = "world-gpt2"

# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


def _model():
    """The check model with no hooks left over from an earlier (wrong) implementation."""
    model = check_model()
    model.reset_hooks()
    return model


@lru_cache(maxsize=8)
def _text_tokens(model, n: int, length: int, seed: int) -> torch.Tensor:
    from utils.ch01_circuits import text_batch

    return text_batch(model, n, length, seed=seed)


def _tokens(model, n: int = 3, length: int = 16, seed: int = 0) -> torch.Tensor:
    """Seeded real text from the small world: [n, length] tokens, BOS first."""
    return _text_tokens(model, n, length, seed).clone()


def _fresh_seed() -> int:
    return int(torch.randint(1, 10**6, ()))


def _fresh_head(model) -> tuple[int, int]:
    return int(torch.randint(model.cfg.n_layers, ())), int(torch.randint(model.cfg.n_heads, ()))


def _cache(model, tokens) -> ActivationCache:
    """A fresh cache (never shared between checks, so a learner's in-place edit cannot leak)."""
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens)
    return cache


def _leftover_hooks(model) -> list[str]:
    return [name for name, point in model.hook_dict.items()
            if point.fwd_hooks or point.bwd_hooks or point._forward_hooks or point._backward_hooks]


def _expect_no_hooks(model, name: str) -> None:
    left = _leftover_hooks(model)
    model.reset_hooks()
    expect(not left, f"`{name}` left hooks on the model at {left[:3]}; add them with "
           "`with model.hooks(fwd_hooks=[...]):` so they are removed when the block ends, "
           "not with `model.add_hook`")


def _expect_pattern(pattern, n_query: int, what: str) -> None:
    pattern = expect_tensor(pattern, what)
    expect(pattern.shape[-2:] == (n_query, n_query), f"{what} should end in ({n_query}, {n_query}) "
           f"(query, key), got shape {tuple(pattern.shape)}")
    expect_close(pattern.sum(-1), torch.ones(pattern.shape[:-1]), atol=1e-4, what=f"each row of {what}",
                 hint="each query's attention should sum to 1: did you return the scores before the softmax "
                      "(`hook_attn_scores`), or put keys on the rows?")
    future = torch.ones(n_query, n_query, dtype=torch.bool).triu(1)
    leak = pattern[..., future].abs().max().item() if n_query > 1 else 0.0
    expect(leak < 1e-6, f"{what} attends to later positions (up to {leak:.3g}); rows must be queries and "
           "columns keys, with the future masked before the softmax")


# ---------------------------------------------------------------------------------------------
# attention_pattern
# ---------------------------------------------------------------------------------------------


@checks("attention_pattern")
def check_is_a_causal_pattern(impl, ref):
    """A [batch, query, key] pattern: rows are probability distributions over past keys."""
    model = _model()
    tokens = _tokens(model, 2, 10)
    with torch.no_grad():
        pattern = impl(model, tokens, 0, 0)
    pattern = expect_tensor(pattern)
    expect(pattern.shape == (2, 10, 10), f"the pattern should have shape [batch, query, key] = (2, 10, 10), got "
           f"{tuple(pattern.shape)}; the cached pattern is [batch, head, query, key]: index the head axis (dim 1)")
    _expect_pattern(pattern, 10, "the pattern")


@checks("attention_pattern")
def check_matches_the_cached_pattern(impl, ref):
    """Same values as the reference for the first and the last head of the model."""
    model = _model()
    tokens = _tokens(model, 2, 12)
    for layer, head in [(0, 0), (model.cfg.n_layers - 1, model.cfg.n_heads - 1)]:
        with torch.no_grad():
            actual = impl(model, tokens, layer, head)
        expect_close(actual, ref(model, tokens, layer, head), atol=1e-5, what=f"the pattern of L{layer}H{head}",
                     hint="read `blocks.{layer}.attn.hook_pattern` and index [:, head]; check that you used the "
                          "layer and head you were given")


@checks("attention_pattern", hidden=True)
def check_fresh_prompts(impl, ref):
    """Other text, a middle head."""
    model = _model()
    tokens = _tokens(model, 3, 20, seed=_fresh_seed())
    layer, head = model.cfg.n_layers // 2, model.cfg.n_heads // 2
    with torch.no_grad():
        actual = impl(model, tokens, layer, head)
    expect_close(actual, ref(model, tokens, layer, head), atol=1e-5, hint="read `blocks.{layer}.attn.hook_pattern`")


# ---------------------------------------------------------------------------------------------
# residual_norms
# ---------------------------------------------------------------------------------------------


@checks("residual_norms")
def check_norms_match_the_residual_stream(impl, ref):
    """The residual norm entering every layer and after the last, per sequence and position."""
    model = _model()
    tokens = _tokens(model, 2, 10)
    with torch.no_grad():
        actual = impl(model, tokens)
    n = model.cfg.n_layers
    expect_close(actual, ref(model, tokens), atol=1e-3, rtol=1e-4, what="the residual norms",
                 hint=f"stack {n} norms of `blocks.{{l}}.hook_resid_pre` and then the norm of "
                      f"`blocks.{n - 1}.hook_resid_post` ({n + 1} in all), each over d_model (dim=-1)")


@checks("residual_norms")
def check_leaves_no_hooks(impl, ref):
    """After the call, no hook is left on any hook point of the model."""
    model = _model()
    with torch.no_grad():
        impl(model, _tokens(model, 1, 8))
    _expect_no_hooks(model, "residual_norms")


@checks("residual_norms", hidden=True)
def check_norms_on_fresh_text(impl, ref):
    model = _model()
    tokens = _tokens(model, 3, 11, seed=_fresh_seed())
    with torch.no_grad():
        actual = impl(model, tokens)
    expect_close(actual, ref(model, tokens), atol=1e-3, rtol=1e-4, what="the residual norms",
                 hint="the norm over d_model of each `hook_resid_pre`, then of the last `hook_resid_post`")


# ---------------------------------------------------------------------------------------------
# decompose_residual
# ---------------------------------------------------------------------------------------------


@checks("decompose_residual")
def check_pieces_sum_to_the_final_residual(impl, ref):
    """The components add up to the final residual stream."""
    model = _model()
    cache = _cache(model, _tokens(model, 2, 12))
    pieces = expect_tensor(impl(model, cache))
    final = cache[f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"]
    expect(pieces.ndim == 4 and pieces.shape[1:] == final.shape,
           f"expected [n_components, batch, pos, d_model] with batch, pos, d_model = {tuple(final.shape)}, got "
           f"{tuple(pieces.shape)}; stack the pieces along a new first dimension")
    expect_close(pieces.sum(0), final, atol=1e-3, rtol=1e-4, what="the sum of the components",
                 hint="did you leave out the positional embedding, or use `hook_resid_mid`/`hook_resid_post` "
                      "(which already hold everything before them) instead of `hook_attn_out`/`hook_mlp_out`?")


@checks("decompose_residual")
def check_components_in_order(impl, ref):
    """embed, pos_embed, then attention and MLP output of each layer, in that order."""
    model = _model()
    cache = _cache(model, _tokens(model, 2, 12))
    expect_close(impl(model, cache), ref(model, cache), atol=1e-5, what="the components",
                 hint="order: hook_embed, hook_pos_embed, then for each layer hook_attn_out and hook_mlp_out")


@checks("decompose_residual", hidden=True)
def check_components_on_fresh_text(impl, ref):
    model = _model()
    cache = _cache(model, _tokens(model, 2, 9, seed=_fresh_seed()))
    expect_close(impl(model, cache), ref(model, cache), atol=1e-5, what="the components",
                 hint="hook_embed, hook_pos_embed, then hook_attn_out and hook_mlp_out of each layer")


# ---------------------------------------------------------------------------------------------
# head_results
# ---------------------------------------------------------------------------------------------


@checks("head_results")
def check_heads_add_up_to_the_attention_output(impl, ref):
    """Summed over heads, plus b_O, the head results are the layer's attention output."""
    model = _model()
    cache = _cache(model, _tokens(model, 2, 10))
    layer = model.cfg.n_layers - 1
    results = expect_tensor(impl(model, cache, layer))
    expected_shape = (2, 10, model.cfg.n_heads, model.cfg.d_model)
    expect(results.shape == expected_shape, f"expected [batch, pos, n_heads, d_model] = {expected_shape}, got "
           f"{tuple(results.shape)}; multiply z [batch, pos, head, d_head] by W_O[layer] [head, d_head, d_model] "
           "per head, summing over d_head only")
    expect_close(results.sum(2) + model.b_O[layer].detach(), cache[f"blocks.{layer}.hook_attn_out"], atol=1e-4,
                 rtol=1e-4, what="the sum over heads plus b_O",
                 hint="don't add the bias b_O to each head (it belongs to the layer), and use W_O of the same layer")


@checks("head_results")
def check_matches_reference_per_head(impl, ref):
    """Each head's result, in the first layer."""
    model = _model()
    cache = _cache(model, _tokens(model, 2, 10))
    expect_close(impl(model, cache, 0), ref(model, cache, 0), atol=1e-5, what="the head results of layer 0",
                 hint="einsum('bphd,hdm->bphm', z, W_O[layer]); keep heads separate")


@checks("head_results", hidden=True)
def check_head_results_on_fresh_text(impl, ref):
    model = _model()
    cache = _cache(model, _tokens(model, 2, 9, seed=_fresh_seed()))
    layer = int(torch.randint(model.cfg.n_layers, ()))
    expect_close(impl(model, cache, layer), ref(model, cache, layer), atol=1e-5, what=f"the head results of layer {layer}",
                 hint="z of that layer times W_O of that layer, per head, without b_O")


# ---------------------------------------------------------------------------------------------
# Head detectors: previous-token, current-token, first-token
# ---------------------------------------------------------------------------------------------


def _archetypes(n: int) -> torch.Tensor:
    """[4, n, n]: previous-token, current-token, first-token and uniform causal patterns."""
    previous = torch.zeros(n, n)
    previous[0, 0] = 1.0
    previous[torch.arange(1, n), torch.arange(n - 1)] = 1.0
    uniform = torch.ones(n, n).tril()
    uniform = uniform / uniform.sum(-1, keepdim=True)
    first = torch.zeros(n, n)
    first[:, 0] = 1.0
    return torch.stack([previous, torch.eye(n), first, uniform])


def planted_cache(model, kind: int, batch: int = 2, n: int = 9, seed: int = 0) -> ActivationCache:
    """A cache holding only attention patterns, each head a random mixture of the four archetypes,
    except that the first and the last head of the model are pure archetype ``kind``."""
    generator = torch.Generator().manual_seed(seed)
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
    weights = torch.rand(batch, n_layers, n_heads, 4, generator=generator) ** 2
    weights[:, 0, 0] = weights[:, -1, -1] = torch.nn.functional.one_hot(torch.tensor(kind), 4).float()
    weights = weights / weights.sum(-1, keepdim=True)
    patterns = torch.einsum("blhk,kqp->lbhqp", weights, _archetypes(n))
    return ActivationCache({f"blocks.{l}.attn.hook_pattern": patterns[l] for l in range(n_layers)}, model)


_DETECTORS = {
    "previous_token_scores": (0, "previous token", "key q - 1 (the diagonal just below the main one: "
                                                   "`pattern.diagonal(offset=-1, dim1=-2, dim2=-1)`)"),
    "current_token_scores": (1, "current token", "key q (the main diagonal), skipping query position 0"),
    "first_token_scores": (2, "first token", "key 0 (the first column), skipping query position 0"),
}


def _check_planted(name: str, impl, ref):
    kind, label, where = _DETECTORS[name]
    model = _model()
    cache = planted_cache(model, kind)
    scores = expect_tensor(impl(model, cache))
    shape = (model.cfg.n_layers, model.cfg.n_heads)
    expect(scores.shape == shape, f"scores should have shape [n_layers, n_heads] = {shape}, got {tuple(scores.shape)}; "
           "average over the batch and the query positions, keep layers and heads")
    for layer, head in [(0, 0), (shape[0] - 1, shape[1] - 1)]:
        value = scores[layer, head].item()
        expect(abs(value - 1) < 1e-4, f"a perfect {label} head (L{layer}H{head}) scores {value:.3f}, not 1; look at "
               f"{where} and average over the batch and query positions 1 .. pos-1")
    expect_close(scores, ref(model, cache), atol=1e-5, what="the scores of mixed heads",
                 hint=f"average attention to {where} over the batch and query positions 1 .. pos-1 "
                      "(position 0 is excluded: its attention is forced)")


def _check_real(name: str, impl, ref, seed: int = 0):
    kind, label, where = _DETECTORS[name]
    model = _model()
    cache = _cache(model, _tokens(model, 3, 16, seed=seed))
    with torch.no_grad():
        scores = impl(model, cache)
    expect_close(scores, ref(model, cache), atol=1e-5, what=f"the {label} scores on text",
                 hint=f"loop over layers, read `blocks.{{layer}}.attn.hook_pattern` [batch, head, q, k], take {where}, "
                      "and average over the batch and query positions 1 .. pos-1")


@checks("previous_token_scores")
def check_planted_previous_token_heads(impl, ref):
    """Synthetic patterns: pure previous-token heads score 1, mixtures score their share."""
    _check_planted("previous_token_scores", impl, ref)


@checks("previous_token_scores")
def check_previous_token_on_text(impl, ref):
    """The model's own patterns on text."""
    _check_real("previous_token_scores", impl, ref)


@checks("previous_token_scores", hidden=True)
def check_previous_token_fresh_text(impl, ref):
    _check_real("previous_token_scores", impl, ref, seed=int(torch.randint(1, 10**6, ())))


@checks("current_token_scores")
def check_planted_current_token_heads(impl, ref):
    """Synthetic patterns: pure current-token heads score 1, mixtures score their share."""
    _check_planted("current_token_scores", impl, ref)


@checks("current_token_scores")
def check_current_token_on_text(impl, ref):
    """The model's own patterns on text."""
    _check_real("current_token_scores", impl, ref)


@checks("current_token_scores", hidden=True)
def check_current_token_fresh_text(impl, ref):
    _check_real("current_token_scores", impl, ref, seed=int(torch.randint(1, 10**6, ())))


@checks("first_token_scores")
def check_planted_first_token_heads(impl, ref):
    """Synthetic patterns: pure first-token heads score 1, mixtures score their share."""
    _check_planted("first_token_scores", impl, ref)


@checks("first_token_scores")
def check_first_token_on_text(impl, ref):
    """The model's own patterns on text."""
    _check_real("first_token_scores", impl, ref)


@checks("first_token_scores", hidden=True)
def check_first_token_fresh_text(impl, ref):
    _check_real("first_token_scores", impl, ref, seed=int(torch.randint(1, 10**6, ())))


# ---------------------------------------------------------------------------------------------
# direct_logit_attribution
# ---------------------------------------------------------------------------------------------

_DLA_HINT = ("take each head's result at the last position (z @ W_O per head, no bias), subtract its mean over "
             "d_model, divide by `ln_final.hook_scale` at the last position, and dot with W_U[:, answer]")


def _dla(impl, ref, answers_from: str, seed: int = 0):
    model = _model()
    tokens = _tokens(model, 3, 14, seed=seed)
    cache = _cache(model, tokens[:, :-1])
    if answers_from == "text":
        answers = tokens[:, -1]
    else:
        answers = torch.randint(model.cfg.d_vocab, (3,), generator=torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        actual = impl(model, cache, answers)
    shape = (3, model.cfg.n_layers, model.cfg.n_heads)
    actual = expect_tensor(actual)
    expect(actual.shape == shape, f"expected [batch, n_layers, n_heads] = {shape}, got {tuple(actual.shape)}")
    expect_close(actual, ref(model, cache, answers), atol=1e-4, rtol=1e-3, what="the logit attributions",
                 hint=_DLA_HINT)


@checks("direct_logit_attribution")
def check_attribution_to_the_true_next_token(impl, ref):
    """Each head's direct effect on the logit of the token that really comes next."""
    _dla(impl, ref, "text")


@checks("direct_logit_attribution")
def check_attribution_to_other_tokens(impl, ref):
    """The same for arbitrary answer tokens (so the answer must come from `answer_tokens`)."""
    _dla(impl, ref, "random", seed=3)


@checks("direct_logit_attribution", hidden=True)
def check_attribution_fresh_text(impl, ref):
    _dla(impl, ref, "text", seed=int(torch.randint(1, 10**6, ())))


# ---------------------------------------------------------------------------------------------
# ablation_loss_change
# ---------------------------------------------------------------------------------------------


def _ablation(impl, ref, method: str, layer=None, head=None):
    model = _model()
    tokens = _tokens(model, 2, 12)
    layer = 0 if layer is None else layer
    head = 0 if head is None else head
    with torch.no_grad():
        actual = impl(model, tokens, layer, head, method)
    _expect_loss_change(actual, ref(model, tokens, layer, head, method), method, layer, head)


def _expect_loss_change(actual, expected, method: str, layer: int, head: int) -> None:
    actual = torch.as_tensor(actual).detach().float().reshape(())
    expect_close(actual, expected.float().reshape(()), atol=2e-4, rtol=1e-3,
                 what=f"the loss change under {method} ablation of L{layer}H{head}",
                 hint="return ablated loss minus clean loss; ablate only head `head` of `blocks.{layer}.attn.hook_z`"
                      + (", replacing it by its mean over the batch AND all positions" if method == "mean" else
                         ", setting it to 0"))


@checks("ablation_loss_change")
def check_zero_ablation(impl, ref):
    """Zero ablation of the first head and of the last head."""
    _ablation(impl, ref, "zero")
    model = check_model()
    _ablation(impl, ref, "zero", model.cfg.n_layers - 1, model.cfg.n_heads - 1)


@checks("ablation_loss_change")
def check_mean_ablation(impl, ref):
    """Mean ablation: the head's output replaced by its average over batch and positions."""
    _ablation(impl, ref, "mean")


@checks("ablation_loss_change", hidden=True)
def check_fresh_head_and_text(impl, ref):
    """Zero and mean ablation of a fresh head, on fresh text."""
    model = _model()
    (layer, head), tokens = _fresh_head(model), _tokens(model, 2, 12, seed=_fresh_seed())
    with torch.no_grad():
        actual = {method: impl(model, tokens, layer, head, method) for method in ("zero", "mean")}
    for method, value in actual.items():
        _expect_loss_change(value, ref(model, tokens, layer, head, method), method, layer, head)


@checks("ablation_loss_change")
def check_model_is_left_unchanged(impl, ref):
    """No hook survives the call, and the model's loss afterwards is the clean loss."""
    model = _model()
    tokens = _tokens(model, 2, 12)
    with torch.no_grad():
        before = model(tokens, return_type="loss").item()
        impl(model, tokens, 0, 0, "zero")
    _expect_no_hooks(model, "ablation_loss_change")
    with torch.no_grad():
        after = model(tokens, return_type="loss").item()
    expect(abs(after - before) < 1e-5, f"the model's loss went from {before:.4f} to {after:.4f} after your call; "
           "did you change its weights instead of ablating with a hook?")


# ---------------------------------------------------------------------------------------------
# positional_attention
# ---------------------------------------------------------------------------------------------


@checks("positional_attention")
def check_positional_pattern_is_causal(impl, ref):
    """A [n, n] causal pattern whose rows sum to 1."""
    model = _model()
    with torch.no_grad():
        pattern = impl(model, 0, 0, 10)
    _expect_pattern(pattern, 10, "the positional pattern")


@checks("positional_attention")
def check_positional_pattern_values(impl, ref):
    """Same values as the reference for the first and the last head."""
    model = _model()
    for layer, head, n in [(0, 0, 12), (model.cfg.n_layers - 1, model.cfg.n_heads - 1, 7)]:
        with torch.no_grad():
            actual = impl(model, layer, head, n)
        expect_close(actual, ref(model, layer, head, n), atol=1e-4, rtol=1e-3,
                     what=f"the positional pattern of L{layer}H{head}",
                     hint="normalise each W_pos row (subtract its mean, divide by its RMS), then queries from W_Q and "
                          "keys from W_K of that head, scores / sqrt(d_head), future masked, softmax over keys")


@checks("positional_attention", hidden=True)
def check_fresh_head_and_length(impl, ref):
    model = _model()
    (layer, head), n = _fresh_head(model), int(torch.randint(4, 16, ()))
    with torch.no_grad():
        actual = impl(model, layer, head, n)
    expect_close(actual, ref(model, layer, head, n), atol=1e-4, rtol=1e-3,
                 what=f"the positional pattern of L{layer}H{head} over {n} positions",
                 hint="normalised W_pos rows, queries from W_Q and keys from W_K of that head, future masked, softmax")
