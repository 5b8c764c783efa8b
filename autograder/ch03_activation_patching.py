"""Checks for chapter 03: activation patching and circuit discovery.

Public checks draw their inputs from fixed seeds; hidden checks draw fresh ones from torch's
global generator, which the grader seeds for each submission and check
(:func:`autograder.core.seeded_for`).
"""
import torch

from autograder.core import check_model, checks, expect, expect_close, expect_tensor

# ============================================================ part 1: metrics and patching (H4)
from utils import ch03_activation_patching as _data


def _gen(seed: int | None) -> torch.Generator | None:
    """A generator seeded with ``seed``; None (torch's global generator) for fresh draws."""
    return None if seed is None else torch.Generator().manual_seed(seed)


_CAPITAL_SUBJECTS = ["Germany", "France", "Italy", "Spain", "Japan", "Egypt", "Peru", "Kenya", "Canada", "Poland"]


def _facts(seed: int | None):
    """The check model and three capital prompts (short, so every patch is quick) drawn with ``seed``."""
    model = check_model()
    pick = torch.randperm(len(_CAPITAL_SUBJECTS), generator=_gen(seed))[:3]
    data = _data.facts_data(model, [_CAPITAL_SUBJECTS[i] for i in pick], seed=int(pick[0]))
    return model, data


def _caches(model, data):
    with torch.no_grad():
        _, clean = model.run_with_cache(data.clean)
        _, corrupted = model.run_with_cache(data.corrupted)
    return clean, corrupted


def _expect_patching(impl, ref, model, args, *, hint: str, what: str = "the output", atol: float = 1e-3,
                     rtol: float = 1e-3) -> None:
    """The learner's patching result matches the reference's; leftover hooks are removed."""
    expected = ref(model, *args)
    try:
        actual = impl(model, *args)
    finally:
        model.reset_hooks()
    expect_close(actual, expected, atol=atol, rtol=rtol, what=what, hint=hint)


# --- logit_difference ------------------------------------------------------------------------


def _random_logits(seed, batch=3, pos=5, vocab=11):
    g = _gen(seed)
    logits = torch.randn(batch, pos, vocab, generator=g) * 3
    answer, wrong = torch.randint(0, vocab, (batch,), generator=g), torch.randint(0, vocab, (batch,), generator=g)
    return logits, answer, wrong


@checks("logit_difference")
def check_random_logits(impl, ref):
    """Random logits: logit of the answer minus logit of the wrong token at the last position."""
    logits, answer, wrong = _random_logits(0)
    expect_close(impl(logits, answer, wrong), ref(logits, answer, wrong), atol=1e-5,
                 hint="use the final position only (logits[:, -1]), one value per prompt, answer minus wrong; "
                      "logits, not probabilities")


@checks("logit_difference")
def check_on_the_model(impl, ref):
    """The check model's logits on capital prompts."""
    model, data = _facts(0)
    with torch.no_grad():
        logits = model(data.clean)
    expect_close(impl(logits, data.answer, data.wrong), ref(logits, data.answer, data.wrong), atol=1e-4,
                 hint="prompt i's answer is answer[i]: index the batch and the token together (gather), "
                      "not logits[:, -1, answer], which is [batch, batch]")


@checks("logit_difference", hidden=True)
def check_fresh_logits(impl, ref):
    """Fresh logits of fresh sizes."""
    logits, answer, wrong = _random_logits(None, *(int(torch.randint(lo, hi, ())) for lo, hi in ((2, 6), (2, 9), (5, 40))))
    expect_close(impl(logits, answer, wrong), ref(logits, answer, wrong), atol=1e-5,
                 hint="logits[b, -1, answer[b]] - logits[b, -1, wrong[b]] for every prompt b")


# --- normalised_metric -----------------------------------------------------------------------


@checks("normalised_metric")
def check_end_points_and_values(impl, ref):
    """The clean value maps to 1, the corrupted one to 0, others linearly, also when clean < corrupted."""
    value = torch.tensor([[2.0, -1.0, 0.5], [8.0, 3.0, -4.0]])
    for clean, corrupted in ((torch.tensor(8.0), torch.tensor(-1.0)), (torch.tensor(-2.0), torch.tensor(3.0))):
        expect_close(impl(value, clean, corrupted), ref(value, clean, corrupted), atol=1e-6,
                     what=f"the normalised values for clean={clean.item()}, corrupted={corrupted.item()}",
                     hint="(value - corrupted) / (clean - corrupted): 0 at the corrupted run, 1 at the clean run")


@checks("normalised_metric", hidden=True)
def check_fresh_values(impl, ref):
    """Fresh values and end points."""
    value, clean, corrupted = torch.randn(3, 4) * 5, torch.randn(()) * 5 + 6, torch.randn(()) * 2
    expect_close(impl(value, clean, corrupted), ref(value, clean, corrupted), atol=1e-5,
                 hint="(value - corrupted) / (clean - corrupted), shaped like value")


# --- probability_difference ------------------------------------------------------------------


def _year_case(seed, batch=4, vocab=130):
    g = _gen(seed)
    years = torch.randperm(vocab, generator=g)[:100]
    logits = torch.randn(batch, 3, vocab, generator=g) * 2
    logits[:, -1, years] += 2.0                      # most of the mass on years, not all of it
    return logits, years, torch.randint(0, 100, (batch,), generator=g)


@checks("probability_difference")
def check_extremes(impl, ref):
    """All mass on the start year gives -1, all on the next year gives +1."""
    years, start = torch.arange(5, 105), torch.tensor([30, 30])
    logits = torch.full((2, 2, 110), -50.0)
    logits[0, -1, years[30]] = 50.0
    logits[1, -1, years[31]] = 50.0
    expect_close(impl(logits, years, start), torch.tensor([-1.0, 1.0]), atol=1e-4,
                 what="the metric with all probability on the start year (row 0) and on the year after (row 1)",
                 hint="the start year itself is not greater than the start: it counts against, with the years below")


@checks("probability_difference")
def check_random_logits(impl, ref):
    """Random logits over a vocabulary where some mass falls outside the year tokens."""
    logits, years, start = _year_case(0)
    expect_close(impl(logits, years, start), ref(logits, years, start), atol=1e-5,
                 hint="softmax over the whole vocabulary at the final position, then sum the year tokens' "
                      "probabilities; year_tokens[y] is the token of year y")


@checks("probability_difference", hidden=True)
def check_fresh_logits(impl, ref):
    """Fresh logits, year tokens and start years."""
    logits, years, start = _year_case(None, batch=int(torch.randint(2, 7, ())))
    expect_close(impl(logits, years, start), ref(logits, years, start), atol=1e-5,
                 hint="P(years > start) - P(years <= start), probabilities from a softmax over the whole vocabulary")


# --- the patching exercises ------------------------------------------------------------------


def _patching_check(impl, ref, seed, *, noising: bool, hint: str) -> None:
    model, data = _facts(seed)
    clean, corrupted = _caches(model, data)
    args = (data.clean, corrupted) if noising else (data.corrupted, clean)
    direction = "noising (corrupted cache into the clean prompts)" if noising else "denoising (clean cache into the corrupted prompts)"
    _expect_patching(impl, ref, model, (*args, data.answer, data.wrong), what=f"the result of {direction}", hint=hint)


RESIDUAL_HINT = ("patch blocks.{layer}.hook_resid_pre at one position at a time (resid[:, pos] = cache value), "
                 "for every prompt of the batch, and record the *mean* logit difference; [n_layers, pos]")


@checks("patch_residual_stream")
def check_denoising(impl, ref):
    """Clean residual stream into corrupted capital prompts."""
    _patching_check(impl, ref, 0, noising=False, hint=RESIDUAL_HINT)


@checks("patch_residual_stream")
def check_noising(impl, ref):
    """Corrupted residual stream into clean capital prompts."""
    _patching_check(impl, ref, 1, noising=True, hint="patch *from* source_cache *into* a run on tokens, whichever "
                    "of the two is clean; " + RESIDUAL_HINT)


@checks("patch_residual_stream")
def check_leaves_no_hooks_behind(impl, ref):
    """After the sweep, no hook is left on any hook point of the model."""
    model, data = _facts(8)
    clean, _ = _caches(model, data)
    try:
        impl(model, data.corrupted, clean, data.answer, data.wrong)
        left = [name for name, point in model.hook_dict.items()
                if point.fwd_hooks or point.bwd_hooks or point._forward_hooks or point._backward_hooks]
    finally:
        model.reset_hooks()
    expect(not left, f"hooks were left on the model at {left[:3]}; use model.run_with_hooks(...) (or the "
           "model.hooks(...) context manager), which removes them after the run, not model.add_hook")


@checks("patch_residual_stream", hidden=True)
def check_fresh_prompts(impl, ref):
    """Fresh capital prompts, denoising."""
    _patching_check(impl, ref, None, noising=False, hint=RESIDUAL_HINT)


LAYER_HINT = ("index 0: blocks.{layer}.hook_attn_out, index 1: blocks.{layer}.hook_mlp_out, each patched at one "
              "position at a time; [2, n_layers, pos]")


@checks("patch_layer_outputs")
def check_denoising(impl, ref):
    """Clean attention and MLP outputs into corrupted capital prompts."""
    _patching_check(impl, ref, 2, noising=False, hint=LAYER_HINT)


@checks("patch_layer_outputs", hidden=True)
def check_fresh_noising(impl, ref):
    """Fresh capital prompts, noising."""
    _patching_check(impl, ref, None, noising=True, hint=LAYER_HINT)


HEAD_HINT = "patch z[:, :, head] of blocks.{layer}.attn.hook_z (every position, one head); [n_layers, n_heads]"


@checks("patch_head_outputs")
def check_denoising(impl, ref):
    """Clean head outputs into corrupted capital prompts."""
    _patching_check(impl, ref, 3, noising=False, hint=HEAD_HINT)


@checks("patch_head_outputs")
def check_noising(impl, ref):
    """Corrupted head outputs into clean capital prompts."""
    _patching_check(impl, ref, 4, noising=True, hint=HEAD_HINT)


@checks("patch_head_outputs", hidden=True)
def check_fresh_prompts(impl, ref):
    """Fresh capital prompts, denoising."""
    _patching_check(impl, ref, None, noising=False, hint=HEAD_HINT)


BY_POSITION_HINT = "patch z[:, pos, head] of blocks.{layer}.attn.hook_z, one (position, head) at a time; [n_layers, pos, n_heads]"


@checks("patch_head_outputs_by_position")
def check_denoising(impl, ref):
    """Clean head outputs into corrupted capital prompts, one position at a time."""
    _patching_check(impl, ref, 5, noising=False, hint=BY_POSITION_HINT)


@checks("patch_head_outputs_by_position", hidden=True)
def check_fresh_noising(impl, ref):
    """Fresh capital prompts, noising."""
    _patching_check(impl, ref, None, noising=True, hint=BY_POSITION_HINT)


# --- causal_tracing --------------------------------------------------------------------------


def _tracing_check(impl, ref, seed) -> None:
    model, data = _facts(seed)
    mask = _data.changed_mask(data)
    scale = 3 * float(model.W_E.detach().std())      # Meng et al.: three times the embeddings' spread
    noise = torch.randn(*data.clean.shape, model.cfg.d_model, generator=_gen(seed)) * scale
    _expect_patching(impl, ref, model, (data.clean, mask, noise, data.answer), atol=1e-6,
                     hint="add noise * mask to hook_embed (the subject only), restore blocks.{layer}.hook_resid_pre "
                          "at one position from a clean run *without* noise, and average P(answer) at the final "
                          "position (softmax, not logits); [n_layers, pos]")


@checks("causal_tracing")
def check_capital_prompts(impl, ref):
    """Three capital prompts with seeded noise on the country."""
    _tracing_check(impl, ref, 0)


@checks("causal_tracing", hidden=True)
def check_fresh_noise(impl, ref):
    """Fresh prompts and fresh noise."""
    _tracing_check(impl, ref, None)


# --- path_patch ------------------------------------------------------------------------------


def _path_check(impl, ref, seed, sender, receiver, component) -> None:
    model, data = _facts(seed)
    clean, _ = _caches(model, data)
    where = "the logits" if receiver is None else f"head {tuple(receiver)}'s {component}"
    # A tenth of the usual relative tolerance: a path that changes little leaves the logit difference
    # near its corrupted value, and rtol 1e-3 would let the q, k and v answers stand in for each other.
    _expect_patching(impl, ref, model, (data.corrupted, clean, sender, receiver, component, data.answer, data.wrong),
                     atol=1e-6, rtol=1e-4, what=f"the logit difference with the path from head {tuple(sender)} to {where} patched",
                     hint="freeze every other head's hook_z and every hook_mlp_out at the plain run's values while "
                          "the sender's z comes from the source; then patch only the receiver's "
                          "hook_{q,k,v}[:, :, head] from that run into a plain run (or, for the logits, use the "
                          "frozen run's own logits)")


@checks("path_patch")
def check_to_each_input(impl, ref):
    """From a first-layer head to a last-layer head's queries, keys and values."""
    model = check_model()
    last = model.cfg.n_layers - 1
    for component in "qkv":
        _path_check(impl, ref, 6, (0, 0), (last, model.cfg.n_heads - 1), component)


@checks("path_patch")
def check_to_the_logits(impl, ref):
    """From a middle head straight to the logits."""
    model = check_model()
    _path_check(impl, ref, 7, (model.cfg.n_layers // 2, 1), None, "q")


@checks("path_patch", hidden=True)
def check_fresh_path(impl, ref):
    """A fresh sender, receiver and input."""
    model = check_model()
    s_layer = int(torch.randint(model.cfg.n_layers - 1, ()))
    sender = (s_layer, int(torch.randint(model.cfg.n_heads, ())))
    receiver = (int(torch.randint(s_layer + 1, model.cfg.n_layers, ())), int(torch.randint(model.cfg.n_heads, ())))
    _path_check(impl, ref, None, sender, receiver, "qkv"[int(torch.randint(3, ()))])


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
    nothing), a strong negative A->logits, a middling embed->logits (kept at threshold 0.5, not at
    1.5, so the two public thresholds give different circuits), and weak edges everywhere else."""
    scores = torch.full((5, 5), 0.01)
    for (w, r), value in {(0, 0): 2.0, (1, 1): 1.5, (2, 4): 3.0, (0, 2): 2.5, (3, 3): 1.0, (1, 4): -2.0,
                          (0, 4): 1.0}.items():
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
