"""Checks for chapter 02: induction heads.

Public checks draw their inputs from fixed seeds; hidden checks draw fresh ones from torch's
global generator, which the grader seeds for each submission and check
(:func:`autograder.core.seeded_for`).
"""
import torch

from autograder.core import check_model, checks, expect, expect_close, expect_tensor


def _gen(seed: int | None) -> torch.Generator | None:
    """A generator seeded with ``seed``; None (torch's global generator) for fresh draws."""
    return None if seed is None else torch.Generator().manual_seed(seed)


def _fresh_seed() -> int:
    return int(torch.randint(1, 10**6, ()))


def _repeat_batch(model, batch: int = 2, half_len: int = 8, seed: int = 0) -> torch.Tensor:
    """BOS + n distinct ordinary tokens, twice, for the check model (any vocabulary)."""
    special = set(model.tokenizer.all_special_ids)
    candidates = torch.tensor([i for i in range(min(model.cfg.d_vocab, 400)) if i not in special])
    g = _gen(seed)
    rows = [candidates[torch.randperm(len(candidates), generator=g)[:half_len]] for _ in range(batch)]
    bos = torch.tensor([model.tokenizer.bos_token_id])
    return torch.stack([torch.cat([bos, r, r]) for r in rows]).long()


def _model_cache(seed: int = 0):
    """The check model, a repeated batch drawn with ``seed``, and the logits and cache of a run on it."""
    model = check_model()
    tokens = _repeat_batch(model, seed=seed)
    with torch.no_grad():
        logits, cache = model.run_with_cache(tokens)
    return model, tokens, logits, cache


def _causal_random_pattern(batch, heads, n, seed=None):
    scores = torch.randn(batch, heads, n, n, generator=_gen(seed)) * 2
    future = torch.ones(n, n, dtype=torch.bool).triu(1)
    return scores.masked_fill(future, float("-inf")).softmax(-1)


# --- repeated_random_tokens ------------------------------------------------------------------

def _candidates() -> torch.Tensor:
    """Token ids to draw from: a new tensor for every check, so none is shared."""
    return torch.arange(10, 60)


@checks("repeated_random_tokens")
def check_shape_dtype_and_bos(impl, ref):
    """[batch, 1 + 2n] long tensor starting with BOS."""
    out = expect_tensor(impl(_candidates(), 8, 3, 1, 0))
    expect(out.shape == (3, 17), f"expected shape (3, 17) for batch=3, half_len=8, got {tuple(out.shape)}; "
           "one BOS, then n tokens, then the same n again")
    expect(out.dtype == torch.long, f"token ids should be torch.long, got {out.dtype}")
    expect(bool((out[:, 0] == 1).all()), "every row should start with the bos id you were given")


@checks("repeated_random_tokens")
def check_second_half_repeats_first(impl, ref):
    """The tokens after BOS are n tokens followed by exactly the same n tokens."""
    out = expect_tensor(impl(_candidates(), 6, 4, 0, 1))
    expect(out.shape == (4, 13), f"expected shape (4, 13), got {tuple(out.shape)}")
    expect(torch.equal(out[:, 1:7], out[:, 7:]), "the second half is not a copy of the first half; draw the n "
           "tokens once per row and concatenate them twice")


@checks("repeated_random_tokens")
def check_distinct_tokens_from_candidates(impl, ref):
    """The n tokens of a half are distinct and come from `candidates`."""
    candidates = torch.arange(100, 112)
    out = expect_tensor(impl(candidates, 10, 4, 0, 2))
    expect(out.shape == (4, 21), f"expected shape (4, 21), got {tuple(out.shape)}")
    half = out[:, 1:11]
    expect(bool(torch.isin(half, candidates).all()), "some tokens are not in `candidates`; index candidates with "
           "the random positions (candidates[perm]) rather than using the positions themselves")
    distinct = all(len(set(row.tolist())) == 10 for row in half)
    expect(distinct, "a token appears twice inside one half; draw without replacement (torch.randperm), not "
           "with torch.randint")


@checks("repeated_random_tokens")
def check_seeded(impl, ref):
    """The same seed gives the same batch; different seeds and different rows differ."""
    a, b, c = impl(_candidates(), 8, 3, 0, 5), impl(_candidates(), 8, 3, 0, 5), impl(_candidates(), 8, 3, 0, 6)
    expect(torch.equal(a, b), "two calls with the same seed gave different batches; draw with "
           "torch.Generator().manual_seed(seed) passed as generator=")
    expect(not torch.equal(a, c), "different seeds gave the same batch")
    expect(not torch.equal(a[0], a[1]), "rows 0 and 1 are identical; draw fresh tokens for every row")


@checks("repeated_random_tokens", hidden=True)
def check_fresh_arguments(impl, ref):
    """Fresh candidates, lengths, batch, BOS id and seed: the reference's shape, a repeat of distinct candidates."""
    candidates = torch.randperm(500)[:int(torch.randint(12, 30, ()))] + 3
    half_len, batch, bos, seed = int(torch.randint(3, 12, ())), int(torch.randint(2, 6, ())), 2, _fresh_seed()
    out = expect_tensor(impl(candidates, half_len, batch, bos, seed))
    expected = ref(candidates, half_len, batch, bos, seed)
    expect(out.shape == expected.shape and out.dtype == expected.dtype,
           f"expected a {expected.dtype} tensor of shape {tuple(expected.shape)}, got {out.dtype} {tuple(out.shape)}")
    half = out[:, 1:1 + half_len]
    expect(bool((out[:, 0] == bos).all()) and torch.equal(half, out[:, 1 + half_len:]),
           "every row should be the bos id, then n tokens, then the same n tokens again")
    expect(bool(torch.isin(half, candidates).all()) and all(len(set(row.tolist())) == half_len for row in half),
           "the n tokens of a row should be distinct tokens from `candidates` (candidates[torch.randperm(...)])")


# --- token_losses ----------------------------------------------------------------------------


@checks("token_losses")
def check_matches_reference(impl, ref):
    """Random logits: -log softmax at the next token."""
    logits = torch.randn(2, 7, 11, generator=_gen(0)) * 3
    tokens = torch.randint(0, 11, (2, 7), generator=_gen(1))
    expect_close(impl(logits, tokens), ref(logits, tokens), atol=1e-4,
                 hint="position p predicts tokens[:, p + 1]: use logits[:, :-1] against tokens[:, 1:], and "
                      "take -log_softmax (not softmax) over the vocabulary")


@checks("token_losses")
def check_on_the_model(impl, ref):
    """The check model's logits on a repeated sequence."""
    _, tokens, logits, _ = _model_cache()
    expect_close(impl(logits, tokens), ref(logits, tokens), atol=1e-4,
                 hint="one loss per predicted token, shape [batch, pos - 1], not a mean")


@checks("token_losses", hidden=True)
def check_fresh_logits(impl, ref):
    """Fresh logits and tokens of fresh sizes."""
    batch, pos, vocab = (int(torch.randint(low, high, ())) for low, high in ((2, 5), (4, 12), (5, 30)))
    logits, tokens = torch.randn(batch, pos, vocab) * 3, torch.randint(0, vocab, (batch, pos))
    expect_close(impl(logits, tokens), ref(logits, tokens), atol=1e-4,
                 hint="-log_softmax(logits[:, :-1]) at tokens[:, 1:], shape [batch, pos - 1]")


# --- previous_token_score --------------------------------------------------------------------


@checks("previous_token_score")
def check_synthetic_heads(impl, ref):
    """A perfect previous-token head scores 1, a BOS-only head 1/(n-1), a uniform head in between."""
    n = 6
    previous = torch.zeros(n, n)
    previous[0, 0] = 1
    previous[torch.arange(1, n), torch.arange(n - 1)] = 1
    bos = torch.zeros(n, n)
    bos[:, 0] = 1
    uniform = torch.ones(n, n).tril()
    uniform = uniform / uniform.sum(-1, keepdim=True)
    pattern = torch.stack([previous, bos, uniform])[None].repeat(2, 1, 1, 1)
    expect_close(impl(pattern), ref(pattern), atol=1e-5,
                 hint="average pattern[q, q - 1] over query positions 1..n-1 (position 0 has no previous "
                      "token) and over the batch, one number per head")


@checks("previous_token_score")
def check_on_model_patterns(impl, ref):
    """The check model's first-layer patterns."""
    _, _, _, cache = _model_cache()
    pattern = cache["pattern", 0]
    expect_close(impl(pattern), ref(pattern), atol=1e-5,
                 hint="the previous token is one diagonal below the main one (key = query - 1)")


@checks("previous_token_score", hidden=True)
def check_fresh_patterns(impl, ref):
    """Fresh random causal patterns of a fresh size."""
    pattern = _causal_random_pattern(2, 3, int(torch.randint(5, 15, ())))
    expect_close(impl(pattern), ref(pattern), atol=1e-5,
                 hint="average pattern[q, q - 1] over query positions 1..n-1 and the batch, one number per head")


# --- induction_score -------------------------------------------------------------------------


def _synthetic_induction_case(tokens=None):
    """Tokens (by default BOS and four tokens, twice) and three perfect heads on them: induction,
    duplicate-token and previous-token (queries with no target attend to position 0)."""
    tokens = torch.tensor([[0, 5, 6, 7, 8, 5, 6, 7, 8]]) if tokens is None else tokens
    n = tokens.shape[1]
    induction, duplicate, previous = torch.zeros(n, n), torch.zeros(n, n), torch.zeros(n, n)
    for q in range(n):
        earlier = [j for j in range(q) if tokens[0, j] == tokens[0, q]]
        induction[q, earlier[0] + 1 if earlier else 0] = 1
        duplicate[q, earlier[0] if earlier else 0] = 1
        previous[q, max(q - 1, 0)] = 1
    return tokens, torch.stack([induction, duplicate, previous])[None]


@checks("induction_score")
def check_synthetic_heads(impl, ref):
    """A perfect induction head scores 1; a duplicate-token head and a previous-token head score 0,
    also when only one query in the batch has an earlier copy."""
    tokens, pattern = _synthetic_induction_case()
    expect_close(impl(pattern, tokens), ref(pattern, tokens), atol=1e-5,
                 hint="the target is the position *after* the earlier copy of the current token (j + 1), "
                      "and only queries that have such a copy count")
    tokens, pattern = _synthetic_induction_case(torch.tensor([[0, 5, 6, 7, 5, 8]]))
    expect_close(impl(pattern, tokens), torch.tensor([1.0, 0.0, 0.0]), atol=1e-5,
                 what="the scores when exactly one query (the second 5) has an earlier copy",
                 hint="a perfect induction head still scores 1: divide by the number of queries with a target, "
                      "which is 1 here; guard only against dividing by 0 (clamp_min(1), not clamp_min(2))")


@checks("induction_score")
def check_on_model_patterns(impl, ref):
    """The check model's last-layer patterns on repeated random tokens."""
    model, tokens, _, cache = _model_cache()
    pattern = cache["pattern", model.cfg.n_layers - 1]
    expect_close(impl(pattern, tokens), ref(pattern, tokens), atol=1e-5,
                 hint="average over the queries of the repeat (those with an earlier copy), not over all "
                      "positions")


@checks("induction_score")
def check_tokens_with_several_copies(impl, ref):
    """Text where tokens recur at irregular distances, some several times (like natural text)."""
    tokens = torch.randint(0, 5, (3, 14), generator=_gen(3))
    pattern = _causal_random_pattern(3, 2, 14, seed=4)
    expect_close(impl(pattern, tokens), ref(pattern, tokens), atol=1e-5,
                 hint="find targets from the tokens (tokens[j] == tokens[q], j < q, target j + 1), not from a "
                      "fixed offset; sum the attention over all targets of a query")


@checks("induction_score", hidden=True)
def check_fresh_tokens_and_patterns(impl, ref):
    """Fresh tokens with repeats at irregular distances, and fresh random patterns."""
    n = int(torch.randint(8, 16, ()))
    tokens, pattern = torch.randint(0, 6, (2, n)), _causal_random_pattern(2, 3, n)
    expect_close(impl(pattern, tokens), ref(pattern, tokens), atol=1e-5,
                 hint="for each query, sum the attention on every j + 1 with tokens[j] == tokens[q], j < q; average "
                      "over the queries that have such a copy")


# --- head_logit_attribution ------------------------------------------------------------------


def _attribution_case(seed: int | None, pos: int = 5, heads: int = 3):
    """Random z, W_O, scale, W_U and tokens (W_O not centred, so the LayerNorm's centring matters)."""
    g = _gen(seed)
    z, W_O = torch.randn(2, pos, heads, 4, generator=g), torch.randn(heads, 4, 8, generator=g) + 0.5
    scale, W_U = torch.rand(2, pos, 1, generator=g) + 0.5, torch.randn(8, 13, generator=g)
    return z, W_O, scale, W_U, torch.randint(0, 13, (2, pos), generator=g)


@checks("head_logit_attribution")
def check_random_weights(impl, ref):
    """Random z, W_O, scale and W_U (W_O not centred, so the LayerNorm's centring matters)."""
    z, W_O, scale, W_U, tokens = _attribution_case(0)
    expect_close(impl(z, W_O, scale, W_U, tokens), ref(z, W_O, scale, W_U, tokens), atol=1e-4,
                 hint="project each head's output z @ W_O, subtract its mean over d_model, divide by the final "
                      "scale, then dot with W_U[:, next token]; the output is [batch, pos - 1, n_heads]")


@checks("head_logit_attribution")
def check_on_the_model(impl, ref):
    """The check model's last layer on a repeated sequence."""
    model, tokens, _, cache = _model_cache()
    layer = model.cfg.n_layers - 1
    z, W_O, W_U = cache["z", layer], model.W_O[layer].detach(), model.W_U.detach()
    scale = cache["ln_final.hook_scale"] if "ln_final.hook_scale" in cache.keys() else torch.ones(*tokens.shape, 1)
    expect_close(impl(z, W_O, scale, W_U, tokens), ref(z, W_O, scale, W_U, tokens), atol=1e-4, rtol=1e-3,
                 hint="the logit that matters at position p is that of tokens[:, p + 1]")


@checks("head_logit_attribution", hidden=True)
def check_fresh_random_weights(impl, ref):
    """Fresh random inputs with more positions and heads."""
    z, W_O, scale, W_U, tokens = _attribution_case(None, pos=int(torch.randint(6, 10, ())), heads=4)
    expect_close(impl(z, W_O, scale, W_U, tokens), ref(z, W_O, scale, W_U, tokens), atol=1e-4,
                 hint="(z @ W_O per head, centred over d_model, divided by the scale) dotted with W_U[:, next token]")


# --- repeat_loss_with_ablation ---------------------------------------------------------------


def _ablation_case():
    model = check_model()
    return model, _repeat_batch(model, seed=1)


@checks("repeat_loss_with_ablation")
def check_no_heads_gives_the_clean_loss(impl, ref):
    """Ablating nothing gives the model's ordinary per-token loss."""
    model, tokens = _ablation_case()
    _expect_ablated_loss(impl, ref, model, tokens, [], hint="return token_losses(logits, tokens) of the run")


def _expect_ablated_loss(impl, ref, model, tokens, heads, *, hint: str, what: str = "the output") -> None:
    """The learner's per-token loss with ``heads`` zero-ablated matches the reference's; hooks the
    learner's code may leave behind are removed whatever happens."""
    expected = ref(model, tokens, heads)
    try:
        actual = impl(model, tokens, heads)
    finally:
        model.reset_hooks()
    expect_close(actual, expected, atol=1e-4, what=what, hint=hint)


@checks("repeat_loss_with_ablation")
def check_ablating_two_heads(impl, ref):
    """Zero-ablating one head in the first layer and one in the last; then two heads of the last layer."""
    model, tokens = _ablation_case()
    last = model.cfg.n_layers - 1
    _expect_ablated_loss(impl, ref, model, tokens, [(0, 0), (last, model.cfg.n_heads - 1)],
                         hint="zero only the listed heads, z[:, :, head] = 0 at blocks.{layer}.attn.hook_z of their "
                              "own layer; not the whole layer, not the pattern or the query")
    same_layer = [(last, 0), (last, model.cfg.n_heads - 1)]
    _expect_ablated_loss(impl, ref, model, tokens, same_layer, what=f"the loss with heads {same_layer} (two of one "
                         "layer) ablated", hint="zero every listed head of a layer; a dict {layer: head} keeps only "
                         "the last head of each layer, so collect a list of heads per layer (or add one hook per head)")


@checks("repeat_loss_with_ablation")
def check_leaves_no_hooks_behind(impl, ref):
    """After an ablated run, a run that ablates nothing is clean again."""
    model, tokens = _ablation_case()
    clean = ref(model, tokens, [])
    try:
        impl(model, tokens, [(0, 0)])
        after = impl(model, tokens, [])
    finally:
        model.reset_hooks()
    expect_close(after, clean, atol=1e-4, what="the loss of a run without ablation, made after an ablated run",
                 hint="your hooks stayed on the model; use model.run_with_hooks(...) or the model.hooks(...) "
                      "context manager so they are removed")


@checks("repeat_loss_with_ablation", hidden=True)
def check_fresh_heads_and_tokens(impl, ref):
    """A fresh repeated batch, with two fresh heads of one fresh layer and one more fresh head ablated."""
    model = check_model()
    tokens = _repeat_batch(model, seed=_fresh_seed())
    layer = int(torch.randint(model.cfg.n_layers, ()))
    heads = {(layer, int(h)) for h in torch.randperm(model.cfg.n_heads)[:2]}
    heads.add((int(torch.randint(model.cfg.n_layers, ())), int(torch.randint(model.cfg.n_heads, ()))))
    heads = sorted(heads)
    _expect_ablated_loss(impl, ref, model, tokens, heads, what=f"the loss with heads {heads} ablated",
                         hint="zero z[:, :, head] at blocks.{layer}.attn.hook_z for each listed head, every head of "
                              "a layer included")


# --- composition_score -----------------------------------------------------------------------


@checks("composition_score")
def check_random_matrices(impl, ref):
    """Random rectangular matrices."""
    g = _gen(0)
    W_A, W_B = torch.randn(6, 4, generator=g), torch.randn(4, 5, generator=g)
    expect_close(impl(W_A, W_B), ref(W_A, W_B), atol=1e-5,
                 hint="Frobenius norms (torch.linalg.matrix_norm's default), of the matrix product W_A @ W_B, "
                      "divided by the product of the two norms; a 0-d tensor")


@checks("composition_score")
def check_extremes(impl, ref):
    """Orthogonal read and write spaces give 0; the identity gives 1/sqrt(n)."""
    W_A = torch.zeros(4, 4)
    W_A[0, 0] = 1.0
    W_B = torch.zeros(4, 4)
    W_B[1, 1] = 2.0
    expect_close(impl(W_A, W_B), torch.tensor(0.0), atol=1e-6, what="the score of two matrices whose product is 0")
    expect_close(impl(torch.eye(9), torch.eye(9)), torch.tensor(1 / 3), atol=1e-5,
                 what="the score of I @ I in 9 dimensions", hint="||I||_F = sqrt(n), so the score is 1/sqrt(n)")


@checks("composition_score", hidden=True)
def check_fresh_matrices(impl, ref):
    """Fresh random matrices of fresh sizes."""
    n, m, k = (int(torch.randint(3, 9, ())) for _ in range(3))
    W_A, W_B = torch.randn(n, m), torch.randn(m, k)
    expect_close(impl(W_A, W_B), ref(W_A, W_B), atol=1e-5,
                 hint="||W_A @ W_B||_F / (||W_A||_F ||W_B||_F), a 0-d tensor")


# --- k_composition_scores --------------------------------------------------------------------


@checks("k_composition_scores")
def check_random_weights(impl, ref):
    """Random weights with 3 early heads and 2 late heads."""
    g = _gen(0)
    W_V0, W_O0 = torch.randn(3, 8, 4, generator=g), torch.randn(3, 4, 8, generator=g)
    W_Q1, W_K1 = torch.randn(2, 8, 4, generator=g), torch.randn(2, 8, 4, generator=g)
    expect_close(impl(W_V0, W_O0, W_Q1, W_K1), ref(W_V0, W_O0, W_Q1, W_K1), atol=1e-5,
                 hint="rows are early heads, columns late heads; K-composition multiplies W_OV = W_V @ W_O by "
                      "the transpose of W_QK = W_Q @ W_K.T (without the transpose you get Q-composition)")


@checks("k_composition_scores")
def check_on_model_weights(impl, ref):
    """Two heads of each of the check model's first two layers."""
    model = check_model()
    if model.cfg.n_layers < 2:
        return
    W_V0, W_O0 = model.W_V[0, :2].detach(), model.W_O[0, :2].detach()
    W_Q1, W_K1 = model.W_Q[1, :2].detach(), model.W_K[1, :2].detach()
    expect_close(impl(W_V0, W_O0, W_Q1, W_K1), ref(W_V0, W_O0, W_Q1, W_K1), atol=1e-5,
                 hint="score every (early head, late head) pair with composition_score(W_OV, W_QK.T)")


@checks("k_composition_scores", hidden=True)
def check_fresh_weights(impl, ref):
    """Fresh random weights with 2 early heads and 3 late heads."""
    W_V0, W_O0 = torch.randn(2, 6, 3), torch.randn(2, 3, 6)
    W_Q1, W_K1 = torch.randn(3, 6, 3), torch.randn(3, 6, 3)
    expect_close(impl(W_V0, W_O0, W_Q1, W_K1), ref(W_V0, W_O0, W_Q1, W_K1), atol=1e-5,
                 hint="rows are early heads, columns late heads: composition_score(W_V @ W_O, (W_Q @ W_K.T).T)")
