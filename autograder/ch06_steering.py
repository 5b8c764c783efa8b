"""Checks for chapter 06: steering and representation engineering.

Public checks draw their inputs from fixed seeds; hidden checks draw fresh ones from torch's
global generator, which the grader seeds for each submission and check.
"""
import torch

from autograder.core import check_model, checks, expect, expect_close, expect_tensor
from utils.world import opinion_prompts


def _gen(seed: int | None) -> torch.Generator | None:
    """A generator seeded with ``seed``; None (torch's global generator) for fresh draws."""
    return None if seed is None else torch.Generator().manual_seed(seed)


def _fresh_seed() -> int:
    return int(torch.randint(1, 10**6, ()))


def _two_classes(n_pos: int, n_neg: int, d: int, seed: int | None, gap: float = 1.0):
    """Two Gaussian clouds whose means differ along a random direction, of unequal sizes."""
    g = _gen(seed)
    shift = torch.randn(d, generator=g)
    shift = gap * shift / shift.norm() * 3
    pos = torch.randn(n_pos, d, generator=g) * 0.8 + shift + 0.5
    neg = torch.randn(n_neg, d, generator=g) * 1.3 - shift + 0.5
    return pos, neg


def _number(value, what: str = "the output") -> torch.Tensor:
    """A number (a Python float or a one-element tensor) as a float64 tensor, for expect_close."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.detach().double().reshape(())
    expect(isinstance(value, (int, float)), f"{what} should be a number, got {type(value).__name__}")
    return torch.tensor(float(value), dtype=torch.float64)


def _labelled(pos, neg):
    return torch.cat([pos, neg]), torch.cat([torch.ones(len(pos)), torch.zeros(len(neg))]).long()


# --- contrastive_activations -------------------------------------------------------------------

def _opinion_texts(n: int, seed: int, split: str = "train") -> tuple[list[str], list[int]]:
    """Opinion prompts of different lengths, and the position of each one's adjective."""
    model = check_model()
    prompts = [p for p in opinion_prompts(n, seed, split)]
    starts = [int((model.to_tokens(p.prompt)[0] != model.to_tokens(p.corrupted)[0]).nonzero()[0]) for p in prompts]
    return [p.prompt for p in prompts], starts


@checks("contrastive_activations")
def check_matches_reference_from_the_adjective(impl, ref):
    """Four prompts of different lengths, averaged from their adjectives, entering layer 1."""
    model = check_model()
    texts, starts = _opinion_texts(4, 0)
    expect_close(impl(model, texts, starts, 1), ref(model, texts, starts, 1), atol=1e-4,
                 hint="read blocks.1.hook_resid_pre (the stream *entering* the layer) and average row i over "
                      "positions starts[i] up to prompt i's own last token, not into the padding")


@checks("contrastive_activations")
def check_start_at_the_last_token(impl, ref):
    """Starting at each prompt's last token gives that token's activation alone."""
    model = check_model()
    texts, _ = _opinion_texts(3, 1)
    last = [model.to_tokens(t).shape[1] - 1 for t in texts]
    expect_close(impl(model, texts, last, 0), ref(model, texts, last, 0), atol=1e-4,
                 hint="with starts[i] the last position, row i is the activation at prompt i's last real token: "
                      "count positions with BOS at 0, and stop at the prompt's own length (shorter prompts are padded)")


@checks("contrastive_activations", hidden=True)
def check_fresh_prompts_and_layer(impl, ref):
    """Fresh held-out prompts, random starts and layer."""
    model = check_model()
    texts, starts = _opinion_texts(5, _fresh_seed(), "test")
    starts = [int(torch.randint(1, s + 1, ())) for s in starts]
    layer = int(torch.randint(model.cfg.n_layers, ()))
    expect_close(impl(model, texts, starts, layer), ref(model, texts, starts, layer), atol=1e-4,
                 what=f"the activations entering layer {layer}",
                 hint="average blocks.{layer}.hook_resid_pre over positions starts[i] .. the prompt's last token")


# --- mean_difference_direction -----------------------------------------------------------------

@checks("mean_difference_direction")
def check_unequal_classes(impl, ref):
    """Classes of 7 and 4 examples: the difference of their means, not normalised."""
    pos, neg = _two_classes(7, 4, 6, 0)
    expect_close(impl(pos, neg), ref(pos, neg), atol=1e-5,
                 hint="mean over each class separately (dim=0), then subtract: positive minus negative; "
                      "do not normalise it")


@checks("mean_difference_direction", hidden=True)
def check_fresh_classes(impl, ref):
    """Fresh classes of random sizes."""
    pos, neg = _two_classes(int(torch.randint(2, 20, ())), int(torch.randint(2, 20, ())), 16, None)
    expect_close(impl(pos, neg), ref(pos, neg), atol=1e-5, hint="mean(pos_acts, 0) - mean(neg_acts, 0)")


# --- separation_statistic ----------------------------------------------------------------------

@checks("separation_statistic")
def check_cohens_d_with_pooled_deviation(impl, ref):
    """Unequal sizes and spreads: Cohen's d with the pooled standard deviation."""
    g = _gen(0)
    pos, neg = torch.randn(12, generator=g) * 0.5 + 2, torch.randn(5, generator=g) * 2 - 1
    expect_close(_number(impl(pos, neg)), _number(ref(pos, neg)), atol=1e-4,
                 hint="s^2 = ((n_pos - 1) var_pos + (n_neg - 1) var_neg) / (n_pos + n_neg - 2) with unbiased "
                      "variances (torch.var's default); d = (mean_pos - mean_neg) / s")


@checks("separation_statistic")
def check_sign(impl, ref):
    """A negative class that projects higher gives a negative statistic."""
    g = _gen(1)
    pos, neg = torch.randn(6, generator=g), torch.randn(6, generator=g) + 3
    expect(float(_number(impl(pos, neg))) < 0, "the positive class projects lower here, so d should be negative; "
           "keep the sign of mean(pos) - mean(neg)")


@checks("separation_statistic", hidden=True)
def check_fresh_projections(impl, ref):
    """Fresh projections of random sizes and spreads."""
    n_pos, n_neg = int(torch.randint(3, 30, ())), int(torch.randint(3, 30, ()))
    pos, neg = torch.randn(n_pos) * (0.2 + torch.rand(())), torch.randn(n_neg) * 2 + torch.randn(())
    expect_close(_number(impl(pos, neg)), _number(ref(pos, neg)), atol=1e-4, hint="Cohen's d with the pooled standard deviation")


# --- train_probe -------------------------------------------------------------------------------

@checks("train_probe")
def check_matches_reference_training(impl, ref):
    """Zero start, full-batch Adam, mean BCE plus weight decay: the reference's weights."""
    acts, labels = _labelled(*_two_classes(20, 12, 8, 0, gap=0.3))
    w, b = impl(acts, labels, 50, 0.05, 1e-2)
    w_ref, b_ref = ref(acts, labels, 50, 0.05, 1e-2)
    expect_close(expect_tensor(w, "w"), w_ref, atol=1e-3, what="the probe weights w",
                 hint="start at zeros, torch.optim.Adam([w, b], lr=lr), loss = BCE-with-logits (mean) + "
                      "weight_decay * (w ** 2).sum(), one full-batch step per iteration")
    expect_close(_number(b, "b"), _number(b_ref), atol=1e-3, what="the probe bias b")


@checks("train_probe")
def check_separates_the_classes(impl, ref):
    """On well-separated classes the probe classifies every training example, class 1 positive."""
    acts, labels = _labelled(*_two_classes(10, 10, 5, 1, gap=2.0))
    w, b = impl(acts, labels, 100, 0.05, 1e-3)
    right = ((acts @ w + b > 0).long() == labels).float().mean()
    expect(float(right) == 1.0, f"the probe gets {float(right):.0%} of separable training data right; the logit "
           "acts @ w + b should be positive for label 1 (train on BCE with logits, labels as floats)")


@checks("train_probe", hidden=True)
def check_fresh_data(impl, ref):
    """Fresh classes and hyperparameters."""
    acts, labels = _labelled(*_two_classes(int(torch.randint(5, 30, ())), int(torch.randint(5, 30, ())), 12, None, 0.5))
    steps, lr, decay = int(torch.randint(10, 60, ())), float(torch.rand(()) * 0.1 + 0.01), float(torch.rand(()) * 0.05)
    w, b = impl(acts, labels, steps, lr, decay)
    w_ref, b_ref = ref(acts, labels, steps, lr, decay)
    expect_close(expect_tensor(w, "w"), w_ref, atol=1e-3, what="the probe weights w",
                 hint="follow the docstring exactly: zeros, Adam, mean BCE with logits + weight_decay * sum(w^2)")
    expect_close(_number(b, "b"), _number(b_ref), atol=1e-3, what="the probe bias b")


# --- mean_difference_classifier ----------------------------------------------------------------

@checks("mean_difference_classifier")
def check_threshold_halfway_between_the_means(impl, ref):
    """Unbalanced classes: w is the mean difference, the threshold halfway between the class means."""
    acts, labels = _labelled(*_two_classes(15, 5, 6, 0))
    w, b = impl(acts, labels)
    w_ref, b_ref = ref(acts, labels)
    expect_close(expect_tensor(w, "w"), w_ref, atol=1e-5, what="w",
                 hint="w = mean of class 1 - mean of class 0")
    expect_close(_number(b, "b"), _number(b_ref), atol=1e-4, what="b",
                 hint="b = -w . (mu_1 + mu_0) / 2: halfway between the class means, not the mean of all rows "
                      "(the classes have different sizes)")


@checks("mean_difference_classifier", hidden=True)
def check_fresh_classes_classifier(impl, ref):
    """Fresh unbalanced classes."""
    acts, labels = _labelled(*_two_classes(int(torch.randint(3, 25, ())), int(torch.randint(3, 25, ())), 10, None))
    perm = torch.randperm(len(labels))
    acts, labels = acts[perm], labels[perm]
    w, b = impl(acts, labels)
    w_ref, b_ref = ref(acts, labels)
    expect_close(expect_tensor(w, "w"), w_ref, atol=1e-5, what="w")
    expect_close(_number(b, "b"), _number(b_ref), atol=1e-4, what="b")


# --- steered_logits ----------------------------------------------------------------------------

def _tokens(seed: int | None = 0) -> torch.Tensor:
    model = check_model()
    return model.to_tokens([p.prompt for p in opinion_prompts(2, 3 if seed is None else seed, "test")][:1])


@checks("steered_logits")
def check_adds_at_every_position(impl, ref):
    """A seeded vector added entering layer 1: the reference's logits at every position."""
    model = check_model()
    tokens = _tokens(0)
    vector = torch.randn(model.cfg.d_model, generator=_gen(0)) * 5
    try:
        out = impl(model, tokens, 1, vector)
    finally:
        model.reset_hooks()
    expect_close(expect_tensor(out), ref(model, tokens, 1, vector), atol=1e-3,
                 hint="add the vector to blocks.{layer}.hook_resid_pre (the input of the layer) at every "
                      "position, unscaled")


@checks("steered_logits")
def check_leaves_no_hooks(impl, ref):
    """After a steered run, a run steered by the zero vector gives the model's ordinary logits."""
    model = check_model()
    tokens = _tokens(1)
    zero = torch.zeros(model.cfg.d_model)
    try:
        impl(model, tokens, 0, torch.randn(model.cfg.d_model, generator=_gen(1)) * 10)
        after = impl(model, tokens, 0, zero)
    finally:
        model.reset_hooks()
    expect_close(expect_tensor(after), ref(model, tokens, 0, zero), atol=1e-3,
                 what="the logits of a zero-vector run made after a steered run",
                 hint="your hook stayed on the model; add it with the model.hooks(...) context manager")


@checks("steered_logits", hidden=True)
def check_fresh_layer_and_vector(impl, ref):
    """A fresh layer, vector and prompt."""
    model = check_model()
    tokens = _tokens(None)
    layer = int(torch.randint(model.cfg.n_layers, ()))
    vector = torch.randn(model.cfg.d_model) * float(torch.rand(()) * 10 + 1)
    try:
        out = impl(model, tokens, layer, vector)
    finally:
        model.reset_hooks()
    expect_close(expect_tensor(out), ref(model, tokens, layer, vector), atol=1e-3, what=f"the logits steered at layer {layer}")


# --- placebo_direction -------------------------------------------------------------------------

@checks("placebo_direction")
def check_seeded_gaussian_of_the_same_norm(impl, ref):
    """The reference's placebo for a seeded direction and seed 7."""
    direction = torch.randn(16, generator=_gen(0)) * 4
    out = expect_tensor(impl(direction, 7))
    expect_close(out.norm(), direction.norm(), atol=1e-4, what="the placebo's norm",
                 hint="rescale the random vector to direction.norm(): a placebo must move the activations as far")
    expect_close(out, ref(direction, 7), atol=1e-5,
                 hint="torch.randn(d_model, generator=torch.Generator().manual_seed(seed)), then rescale")


@checks("placebo_direction", hidden=True)
def check_fresh_direction_and_seed(impl, ref):
    """A fresh direction and seed."""
    direction, seed = torch.randn(int(torch.randint(8, 64, ()))) * 3, _fresh_seed()
    expect_close(expect_tensor(impl(direction, seed)), ref(direction, seed), atol=1e-5,
                 hint="a seeded Gaussian vector rescaled to the direction's norm")


# --- kl_cost -----------------------------------------------------------------------------------

@checks("kl_cost")
def check_matches_reference_kl(impl, ref):
    """Random logits: KL(clean || steered), averaged over batch and positions."""
    g = _gen(0)
    clean, steered = torch.randn(2, 5, 9, generator=g) * 2, torch.randn(2, 5, 9, generator=g) * 2
    expect_close(_number(impl(clean, steered)), _number(ref(clean, steered)), atol=1e-4,
                 hint="log_softmax both; sum p_clean * (log p_clean - log p_steered) over the vocabulary; "
                      "mean over batch and positions (the clean distribution comes first)")


@checks("kl_cost")
def check_zero_for_a_shifted_logit(impl, ref):
    """Adding a constant to every logit changes no distribution: the cost is zero."""
    clean = torch.randn(1, 4, 7, generator=_gen(1))
    expect_close(_number(impl(clean, clean + 3.0)), _number(0.0), atol=1e-5,
                 hint="compare probabilities (log_softmax), not raw logits")


@checks("kl_cost", hidden=True)
def check_fresh_logits(impl, ref):
    """Fresh shapes and logits."""
    shape = (int(torch.randint(1, 4, ())), int(torch.randint(1, 8, ())), int(torch.randint(3, 30, ())))
    clean, steered = torch.randn(shape) * 3, torch.randn(shape)
    expect_close(_number(impl(clean, steered)), _number(ref(clean, steered)), atol=1e-4, hint="KL(clean || steered), mean")


# --- ablate_direction --------------------------------------------------------------------------

@checks("ablate_direction")
def check_projects_out_a_long_direction(impl, ref):
    """A direction of norm 5 projected out of a batch of activations."""
    g = _gen(0)
    acts, direction = torch.randn(2, 3, 6, generator=g), torch.randn(6, generator=g)
    direction = 5 * direction / direction.norm()
    out = expect_tensor(impl(acts, direction))
    expect_close(out @ (direction / 5), torch.zeros(2, 3), atol=1e-5, what="the component along the direction",
                 hint="normalise the direction first: acts - (acts . u) u with u = direction / |direction|")
    expect_close(out, ref(acts, direction), atol=1e-5, hint="subtract only the component along the direction")


@checks("ablate_direction", hidden=True)
def check_fresh_activations(impl, ref):
    """Fresh shapes and direction."""
    d = int(torch.randint(4, 40, ()))
    acts, direction = torch.randn(int(torch.randint(1, 5, ())), d) * 3, torch.randn(d) * float(torch.rand(()) * 9 + 0.1)
    expect_close(expect_tensor(impl(acts, direction)), ref(acts, direction), atol=1e-5,
                 hint="acts - (acts . u) u with u the unit direction")


# --- orthogonalize_weights ---------------------------------------------------------------------

def _weights(d_model: int, seed: int | None) -> dict[str, torch.Tensor]:
    """TransformerLens-shaped weights of one layer (2 heads of 3, a 10-neuron MLP)."""
    g = _gen(seed)
    shapes = {"W_E": (11, d_model), "W_Q": (2, d_model, 3), "b_Q": (2, 3), "W_O": (2, 3, d_model), "b_O": (d_model,),
              "W_in": (d_model, 10), "b_in": (10,), "W_out": (10, d_model), "b_out": (d_model,), "W_U": (d_model, 11)}
    return {name: torch.randn(*shape, generator=g) for name, shape in shapes.items()}


@checks("orthogonalize_weights")
def check_writers_lose_the_direction(impl, ref):
    """Every weight that writes into the residual stream writes nothing along the direction."""
    weights, direction = _weights(6, 0), torch.randn(6, generator=_gen(1)) * 3
    for name in ("W_E", "W_O", "b_O", "W_out", "b_out"):
        out = expect_tensor(impl(name, weights[name], direction), name)
        expect_close(out, ref(name, weights[name], direction), atol=1e-5, what=name,
                     hint=f"{name} writes into the residual stream along its last dimension: subtract "
                          "(weight . u) u there, with u the unit direction")


@checks("orthogonalize_weights")
def check_readers_stay_unchanged(impl, ref):
    """Weights that read from the residual stream (queries, MLP input, unembedding) are returned unchanged."""
    weights, direction = _weights(6, 2), torch.randn(6, generator=_gen(3))
    for name in ("W_Q", "b_Q", "W_in", "b_in", "W_U"):
        out = expect_tensor(impl(name, weights[name], direction), name)
        expect_close(out, weights[name], atol=1e-6, what=name,
                     hint=f"{name} reads from the residual stream (or never touches it); only what writes into "
                          "it (W_E, W_pos, W_O, b_O, W_out, b_out) should change")


@checks("orthogonalize_weights", hidden=True)
def check_fresh_weights(impl, ref):
    """Fresh weights and direction for every name."""
    weights, direction = _weights(int(torch.randint(4, 20, ())), None), None
    direction = torch.randn(weights["W_E"].shape[1]) * 2
    for name, weight in weights.items():
        expect_close(expect_tensor(impl(name, weight, direction), name), ref(name, weight, direction), atol=1e-5,
                     what=name, hint="orthogonalise the writers along their last dimension; return readers unchanged")


# --- first_principal_component -----------------------------------------------------------------

def _differences(n: int, d: int, seed: int | None) -> torch.Tensor:
    """Pair differences: a shared offset, a dominant axis of variation, and noise."""
    g = _gen(seed)
    offset, axis = torch.randn(d, generator=g), torch.randn(d, generator=g)
    axis = axis / axis.norm()
    return 2 * offset + torch.randn(n, 1, generator=g) * 4 * axis + torch.randn(n, d, generator=g) * 0.3


@checks("first_principal_component")
def check_centred_top_component_signed_by_the_mean(impl, ref):
    """The top component of the centred rows, a unit vector pointing along the mean."""
    diffs = _differences(30, 8, 0)
    out = expect_tensor(impl(diffs))
    expect_close(out.norm(), torch.tensor(1.0), atol=1e-4, what="the norm", hint="return a unit vector")
    expect(float(out @ diffs.mean(0)) >= 0, "the component points away from the mean of the rows; flip its sign "
           "when its dot product with diffs.mean(0) is negative")
    expect_close(out, ref(diffs), atol=1e-4, hint="centre the rows (subtract their mean) before the SVD, and take "
                 "the first row of Vh")


@checks("first_principal_component", hidden=True)
def check_fresh_differences(impl, ref):
    """Fresh differences."""
    diffs = _differences(int(torch.randint(10, 40, ())), int(torch.randint(4, 20, ())), None)
    expect_close(expect_tensor(impl(diffs)), ref(diffs), atol=1e-4, hint="top right-singular vector of the centred rows")
