"""Checks for chapter 03: activation patching and circuit discovery.

Public checks draw their inputs from fixed seeds; hidden checks draw fresh ones from torch's
global generator, which the grader seeds for each submission and check
(:func:`autograder.core.seeded_for`).
"""
import torch

from autograder.core import check_model, checks, expect, expect_close, expect_tensor

# ============================================================ part 1: metrics and patching (H4)

# ============================================================ part 2: attribution, discovery, faithfulness (H5)


def _d_seed() -> int:
    """A fresh seed from torch's global generator (seeded by the grader for hidden checks)."""
    return int(torch.randint(1, 10**6, ()))


def _d_ioi(n: int, seed: int, corruption: str = "S"):
    """The check model and n aligned IOI prompts drawn with ``seed``."""
    from utils.ch03_activation_patching import ioi_data

    model = check_model()
    return model, ioi_data(model, n, corruption=corruption, seed=seed)


# --- attribution_patch -----------------------------------------------------------------------


def _expect_attribution(impl, ref, seed: int, hook_name: str, hint: str) -> None:
    model, data = _d_ioi(4, seed)
    args = (model, data.clean, data.corrupted, data.answer, data.wrong, hook_name)
    with torch.enable_grad():  # checks run without gradients; this exercise needs one backward pass
        expected = ref(*args)
        try:
            actual = impl(*args)
        finally:
            model.reset_hooks()
            model.zero_grad(set_to_none=True)
    expect_close(actual, expected, atol=1e-3, rtol=1e-3, what=f"the estimates at {hook_name}", hint=hint)


@checks("attribution_patch")
def check_attribution_at_the_residual_stream(impl, ref):
    """The residual stream before layer 1, one estimate per position."""
    _expect_attribution(impl, ref, 0, "blocks.1.hook_resid_pre",
                        hint="(clean activation - corrupted activation) * the gradient of the mean logit difference "
                             "taken on the corrupted run, summed over d_model and over the batch: shape [pos]")


@checks("attribution_patch")
def check_attribution_per_head(impl, ref):
    """Every head of the last layer at every position (hook_z)."""
    model = check_model()
    _expect_attribution(impl, ref, 1, f"blocks.{model.cfg.n_layers - 1}.attn.hook_z",
                        hint="for hook_z, sum over d_head only, keeping [pos, n_heads]; the gradient must come from "
                             "the corrupted run (denoising: patch clean into corrupted), and the metric is the mean "
                             "over prompts, not the sum")


@checks("attribution_patch", hidden=True)
def check_attribution_fresh_prompts(impl, ref):
    """Fresh prompts at a fresh layer's heads."""
    model = check_model()
    layer = int(torch.randint(model.cfg.n_layers, ()))
    _expect_attribution(impl, ref, _d_seed(), f"blocks.{layer}.attn.hook_z",
                        hint="(a_clean - a_corrupted) . d mean_logit_difference / d a on the corrupted run")


# --- edge_attribution_scores -----------------------------------------------------------------


def _edge_case(seed: int | None, writers: int = 4, readers: int = 5, batch: int = 3, pos: int = 6, d: int = 8):
    g = None if seed is None else torch.Generator().manual_seed(seed)
    deltas = torch.randn(writers, batch, pos, d, generator=g)
    grads = torch.randn(readers, batch, pos, d, generator=g)
    mask = torch.rand(writers, readers, generator=g) > 0.4
    return deltas, grads, mask


@checks("edge_attribution_scores")
def check_edge_scores_random(impl, ref):
    """Random deltas, gradients and mask."""
    deltas, grads, mask = _edge_case(0)
    expect_close(impl(deltas, grads, mask), ref(deltas, grads, mask), atol=1e-4,
                 hint="score[w, r] = sum over positions and d_model of delta[w] * grad[r], averaged over the batch "
                      "(not summed, not averaged over positions), and 0 where mask is False")


@checks("edge_attribution_scores")
def check_edge_scores_one_prompt_one_position(impl, ref):
    """One prompt and one position: each score is one dot product; masked edges are exactly 0."""
    deltas, grads, mask = _edge_case(1, batch=1, pos=1)
    out = expect_tensor(impl(deltas, grads, mask))
    expect(out.shape == mask.shape, f"expected shape {tuple(mask.shape)} [n_writers, n_readers], got {tuple(out.shape)}")
    expect(bool((out[~mask] == 0).all()), "edges where mask is False (a writer after its reader) must score 0")
    expect_close(out, ref(deltas, grads, mask), atol=1e-4, hint="with one prompt and one position the score of "
                 "w -> r is the dot product deltas[w, 0, 0] . grads[r, 0, 0]")


@checks("edge_attribution_scores", hidden=True)
def check_edge_scores_fresh(impl, ref):
    """Fresh sizes and values."""
    sizes = [int(torch.randint(2, 7, ())) for _ in range(5)]
    deltas, grads, mask = _edge_case(None, *sizes)
    expect_close(impl(deltas, grads, mask), ref(deltas, grads, mask), atol=1e-4,
                 hint="einsum('wbpd,rbpd->wr') / batch, times the mask")


# --- circuit_from_scores ---------------------------------------------------------------------


def _small_graph():
    """Writers embed, A, B, C, D; readers A, B, C, D (their inputs) and logits.

    Strong edges: embed->A, A->B, B->logits (a path), embed->C, C->D (a dead end: D reaches
    nothing), a strong negative A->logits, and weak edges everywhere else."""
    scores = torch.full((5, 5), 0.01)
    for (w, r), value in {(0, 0): 2.0, (1, 1): 1.5, (2, 4): 3.0, (0, 2): 2.5, (3, 3): 1.0, (1, 4): -2.0}.items():
        scores[w, r] = value
    return scores, [1, 2, 3, 4, -1]


@checks("circuit_from_scores")
def check_circuit_on_a_small_graph(impl, ref):
    """A path to the logits is kept; a chain of two strong edges that leads nowhere is dropped."""
    scores, owner = _small_graph()
    out = expect_tensor(impl(scores, 0.5, owner))
    expected = ref(scores, 0.5, owner)
    expect(out.dtype == torch.bool and out.shape == scores.shape,
           f"expected a bool tensor of shape {tuple(scores.shape)}, got {out.dtype} {tuple(out.shape)}")
    expect(bool(out[1, 4]), "A -> logits scores -2.0: keep edges by the size of their score (abs), not its sign")
    expect(not out[0, 2] and not out[3, 3], "embed -> C and C -> D are strong but D feeds nothing: keep only edges "
           "that lead to the logits, and repeat the pruning until nothing changes (dropping C -> D makes "
           "embed -> C a dead end too)")
    expect(torch.equal(out, expected), f"kept edges {out.nonzero().tolist()}, expected {expected.nonzero().tolist()}")


@checks("circuit_from_scores")
def check_circuit_threshold_is_inclusive(impl, ref):
    """An edge whose score equals the threshold is kept; a threshold above everything keeps nothing."""
    scores, owner = _small_graph()
    out = expect_tensor(impl(scores, 1.5, owner))
    expect(torch.equal(out, ref(scores, 1.5, owner)), "A -> B scores exactly 1.5: keep |score| >= threshold")
    expect(not bool(impl(scores, 10.0, owner).any()), "with a threshold above every score the circuit is empty")


@checks("circuit_from_scores", hidden=True)
def check_circuit_fresh_scores(impl, ref):
    """A fresh random graph in layers, at a fresh threshold."""
    n = int(torch.randint(4, 9, ()))
    scores = torch.randn(n + 1, n + 1) * torch.ones(n + 1, n + 1).triu()   # writer w feeds readers r >= w
    owner = list(range(1, n + 1)) + [-1]
    threshold = float(torch.rand(()) + 0.3)
    out = expect_tensor(impl(scores, threshold, owner))
    expected = ref(scores, threshold, owner)
    expect(torch.equal(out, expected), f"kept edges {out.nonzero().tolist()}, expected {expected.nonzero().tolist()}; "
           "keep |score| >= threshold, then repeatedly drop edges into readers whose owner has no kept edge that "
           "leads to the logits")


# --- faithfulness ----------------------------------------------------------------------------


def _expect_faithful(impl, ref, seed: int, heads: list, mlps: list, hint: str) -> None:
    model, data = _d_ioi(6, seed)
    reference = _d_ioi(12, seed + 1, corruption="IO")[1].corrupted
    args = (model, data.clean, data.answer, data.wrong, reference, heads, mlps)
    expected = ref(*args)
    try:
        actual = impl(*args)
    finally:
        model.reset_hooks()
    expect(isinstance(actual, tuple) and len(actual) == 2, "return a tuple (logit differences, top-1 correct)")
    expect_close(actual[0], expected[0], atol=1e-3, rtol=1e-3, what=f"the logit differences keeping heads {heads} "
                 f"and MLPs {mlps}", hint=hint)
    expect_close(actual[1], expected[1], what="top-1 correct (1.0 or 0.0 per prompt)",
                 hint="argmax of the final position's logits equals answer, as floats")


@checks("faithfulness")
def check_faithfulness_of_a_circuit(impl, ref):
    """Two heads of each layer and one MLP kept, everything else mean-ablated."""
    model = check_model()
    heads = [(layer, head) for layer in range(model.cfg.n_layers) for head in (0, model.cfg.n_heads - 1)]
    _expect_faithful(impl, ref, 0, heads, [0], hint="replace hook_z of every head outside the circuit and hook_mlp_out "
                     "of every MLP outside it by its mean over the reference prompts, per position (mean over the "
                     "batch only), not by zero")


@checks("faithfulness")
def check_faithfulness_of_the_whole_model(impl, ref):
    """Keeping everything changes nothing; keeping nothing is the mean-ablated model."""
    model = check_model()
    every = [(layer, head) for layer in range(model.cfg.n_layers) for head in range(model.cfg.n_heads)]
    _expect_faithful(impl, ref, 1, every, list(range(model.cfg.n_layers)),
                     hint="with every component in the circuit the run is the ordinary one")
    _expect_faithful(impl, ref, 1, [], [], hint="with an empty circuit every head and every MLP is mean-ablated")


@checks("faithfulness", hidden=True)
def check_faithfulness_fresh_circuit(impl, ref):
    """A fresh random circuit on fresh prompts."""
    model = check_model()
    every = [(layer, head) for layer in range(model.cfg.n_layers) for head in range(model.cfg.n_heads)]
    heads = [every[i] for i in sorted(torch.randperm(len(every))[:len(every) // 2].tolist())]
    mlps = sorted(torch.randperm(model.cfg.n_layers)[:max(1, model.cfg.n_layers // 2)].tolist())
    _expect_faithful(impl, ref, _d_seed(), heads, mlps, hint="mean-ablate (per position, over the reference prompts) "
                     "every head and MLP outside the circuit")


# --- bootstrap_ci ----------------------------------------------------------------------------


@checks("bootstrap_ci")
def check_bootstrap_interval(impl, ref):
    """Paired values, 500 resamples, seed 0, level 0.9."""
    g = torch.Generator().manual_seed(0)
    full = torch.rand(40, generator=g) + 1
    kept = full * 0.6 + torch.randn(40, generator=g) * 0.2
    expect_close(impl(kept, full, 500, 0, 0.9), ref(kept, full, 500, 0, 0.9), atol=1e-5,
                 hint="draw all indices at once with torch.randint(0, n, (n_resamples, n), generator=...), use the "
                      "same indices for kept and full, take mean(kept)/mean(full) per resample, and return the "
                      "(1 - level)/2 and (1 + level)/2 quantiles")


@checks("bootstrap_ci")
def check_bootstrap_of_an_accuracy(impl, ref):
    """An accuracy (full is all ones) at the default level."""
    correct = (torch.rand(30, generator=torch.Generator().manual_seed(1)) > 0.3).float()
    expect_close(impl(correct, torch.ones(30), 1000, 3), ref(correct, torch.ones(30), 1000, 3), atol=1e-5,
                 hint="level defaults to 0.95: the 0.025 and 0.975 quantiles")


@checks("bootstrap_ci", hidden=True)
def check_bootstrap_fresh(impl, ref):
    """Fresh values, sizes, seed and level."""
    n = int(torch.randint(10, 60, ()))
    full, kept = torch.rand(n) + 0.5, torch.rand(n)
    level, seed = float(torch.rand(()) * 0.3 + 0.65), _d_seed()
    expect_close(impl(kept, full, 300, seed, level), ref(kept, full, 300, seed, level), atol=1e-5,
                 hint="a percentile bootstrap of mean(kept)/mean(full) over resampled prompts")
