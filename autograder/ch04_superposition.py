"""Checks for chapter 04: superposition in toy models.

Statistical checks (of ``generate_batch``) run the learner's code under a fixed seed inside
``torch.random.fork_rng()``, so they are deterministic and leave the learner's random state alone.
Hidden checks draw fresh inputs from torch's global generator, which the grader seeds for each
submission and check (:func:`autograder.core.seeded_for`).
"""
import math

import torch

from autograder.core import checks, expect, expect_close, expect_tensor


def _seeded(seed: int):
    return torch.Generator().manual_seed(seed)


def _run_seeded(seed: int, function, *args, **kwargs):
    """``function(*args)`` under ``torch.manual_seed(seed)``, restoring the caller's random state."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return function(*args, **kwargs)


def _weights(seed: int, n_instances: int, n_hidden: int, n_features: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = _seeded(seed)
    W = torch.randn(n_instances, n_hidden, n_features, generator=g) * math.sqrt(2 / (n_hidden + n_features))
    b = torch.randn(n_instances, n_features, generator=g) * 0.3
    return W, b


def _fresh_weights() -> torch.Tensor:
    """Fresh random weights [n_instances, n_hidden, n_features] of fresh sizes, one unused feature."""
    n_instances, n_hidden, n_features = (int(torch.randint(low, high, ())) for low, high in ((2, 5), (2, 5), (5, 9)))
    W = torch.randn(n_instances, n_hidden, n_features) * math.sqrt(2 / (n_hidden + n_features))
    W[:, :, -1] = 0.0
    return W


def _fresh_seed() -> int:
    return int(torch.randint(1, 10**6, ()))


def _pentagon(radius: float = 1.0) -> torch.Tensor:
    """Five features evenly spread on a circle in two dimensions: W of shape [2, 5]."""
    angles = torch.arange(5) * 2 * math.pi / 5
    return radius * torch.stack([angles.cos(), angles.sin()])


# --- feature_importance ----------------------------------------------------------------------

@checks("feature_importance")
def check_first_feature_has_importance_one(impl, ref):
    """importance[0] = 1 and each next feature is `decay` times the previous one."""
    expect_close(impl(5, 0.9), ref(5, 0.9), what="feature_importance(5, 0.9)",
                 hint="importance[i] = decay ** i, starting from i = 0 (so the first feature has importance 1)")


@checks("feature_importance")
def check_other_sizes(impl, ref):
    """Another length and decay, as float32."""
    expect_close(impl(8, 0.7), ref(8, 0.7), what="feature_importance(8, 0.7)",
                 hint="a geometric decay decay ** i, as a float32 tensor")


@checks("feature_importance", hidden=True)
def check_fresh_length_and_decay(impl, ref):
    """A fresh length and decay."""
    n, decay = int(torch.randint(3, 13, ())), 0.5 + 0.5 * float(torch.rand(()))
    expect_close(impl(n, decay), ref(n, decay), what=f"feature_importance({n}, {decay:.3f})",
                 hint="importance[i] = decay ** i for i = 0 .. n_features - 1, as float32")


# --- generate_batch --------------------------------------------------------------------------

@checks("generate_batch")
def check_batch_shape_and_dtype(impl, ref):
    """A [n_batch, n_instances, n_features] float32 tensor."""
    x = expect_tensor(_run_seeded(0, impl, 64, torch.tensor([0.0, 0.5, 0.9]), 4), "the batch")
    expect(x.shape == (64, 3, 4), f"the batch has shape {tuple(x.shape)}, expected (64, 3, 4) = "
           "(n_batch, n_instances, n_features); the instance axis comes from sparsity.shape[0]")
    expect(x.dtype == torch.float32, f"the batch has dtype {x.dtype}, expected torch.float32")


@checks("generate_batch")
def check_values_are_uniform_on_zero_one(impl, ref):
    """Present features are uniform in [0, 1] (mean 1/2, std 1/sqrt(12)); absent ones are 0."""
    x = expect_tensor(_run_seeded(1, impl, 4096, torch.tensor([0.0, 0.6]), 5), "the batch")
    expect(x.shape == (4096, 2, 5), f"the batch has shape {tuple(x.shape)}, expected (4096, 2, 5)")
    expect(bool((x >= 0).all() and (x <= 1).all()),
           f"values range from {x.min().item():.3g} to {x.max().item():.3g}; features take values in [0, 1] "
           "(torch.rand, not torch.randn)")
    present = x[x != 0]
    mean, std = present.mean().item(), present.std().item()
    expect(abs(mean - 0.5) < 0.02 and abs(std - 12 ** -0.5) < 0.02,
           f"present values have mean {mean:.3f} and std {std:.3f}; uniform on [0, 1] has mean 0.5 and std "
           "0.289. Draw values with torch.rand and keep them where the feature is present", mean=mean, std=std)


@checks("generate_batch")
def check_features_present_with_probability_one_minus_sparsity(impl, ref):
    """In instance i each feature is nonzero with probability 1 - sparsity[i]."""
    sparsity = torch.tensor([0.0, 0.3, 0.9])
    x = expect_tensor(_run_seeded(2, impl, 4096, sparsity, 8), "the batch")
    expect(x.shape == (4096, 3, 8), f"the batch has shape {tuple(x.shape)}, expected (4096, 3, 8)")
    density = (x != 0).float().mean(dim=(0, 2))
    expected = 1 - sparsity
    expect(bool(((density - expected).abs() < 0.02).all()),
           f"fraction of nonzero features per instance is {[round(v, 3) for v in density.tolist()]}, expected "
           f"{[round(v, 3) for v in expected.tolist()]}: a feature is present with probability 1 - S "
           "(S is the sparsity, the probability of being absent)", density=density.tolist())


@checks("generate_batch")
def check_features_are_independent(impl, ref):
    """Each (example, feature) is present independently: two features co-occur with probability (1-S)^2."""
    x = expect_tensor(_run_seeded(3, impl, 8192, torch.tensor([0.5]), 4), "the batch")
    expect(x.shape == (8192, 1, 4), f"the batch has shape {tuple(x.shape)}, expected (8192, 1, 4)")
    present = (x[:, 0] != 0).float()
    both = (present[:, 0] * present[:, 1]).mean().item()
    expect(abs(both - 0.25) < 0.03,
           f"features 0 and 1 are both present in {both:.3f} of examples, expected 0.25 = 0.5 * 0.5; draw a "
           "separate presence mask for every (example, instance, feature), not one per example", both=both)


@checks("generate_batch", hidden=True)
def check_fresh_sizes_and_sparsities(impl, ref):
    """Fresh sizes and sparsities: the reference's shape and dtype, each feature present with probability 1 - S."""
    n_instances, n_features = int(torch.randint(2, 5, ())), int(torch.randint(3, 7, ()))
    sparsity = torch.rand(n_instances) * 0.9
    x = expect_tensor(_run_seeded(_fresh_seed(), impl, 4096, sparsity, n_features), "the batch")
    expected = ref(4096, sparsity, n_features)
    expect(x.shape == expected.shape and x.dtype == expected.dtype,
           f"the batch is {tuple(x.shape)} {x.dtype}, expected {tuple(expected.shape)} {expected.dtype}")
    density = (x != 0).float().mean(dim=(0, 2))
    expect(bool(((density - (1 - sparsity)).abs() < 0.03).all()),
           f"fraction of nonzero features per instance is {[round(v, 3) for v in density.tolist()]}, expected "
           f"{[round(v, 3) for v in (1 - sparsity).tolist()]} (1 - sparsity)")


# --- toy_forward -----------------------------------------------------------------------------

@checks("toy_forward")
def check_bias_is_added_before_the_relu(impl, ref):
    """With W = 0 the output is ReLU(b): the bias goes inside the ReLU."""
    _, b = _weights(10, 3, 2, 5)
    W = torch.zeros(3, 2, 5)
    x = torch.rand(4, 3, 5, generator=_seeded(11))
    expect_close(impl(W, b, x), ref(W, b, x), what="the output with W = 0",
                 hint="with W = 0 the output should be ReLU(b) for every example; did you forget + b, or add it "
                      "after the ReLU?")


@checks("toy_forward")
def check_relu_on_the_output_not_the_hidden_layer(impl, ref):
    """x' = ReLU(W^T (W x) + b): the hidden layer h = W x is linear."""
    W, b = _weights(12, 4, 2, 5)
    x = torch.rand(16, 4, 5, generator=_seeded(13))
    expect_close(impl(W, b, x), ref(W, b, x),
                 hint="h = W x has no nonlinearity; the ReLU acts on W^T h + b. Each instance uses its own "
                      "W[i] and b[i] (einsum 'ihf,bif->bih' then 'ihf,bih->bif')")


@checks("toy_forward")
def check_linear_model_when_relu_is_false(impl, ref):
    """relu=False gives the linear model W^T W x + b (outputs may be negative)."""
    W, b = _weights(14, 3, 2, 6)
    x = torch.rand(8, 3, 6, generator=_seeded(15))
    expect_close(impl(W, b, x, relu=False), ref(W, b, x, relu=False), what="the linear model's output",
                 hint="with relu=False return W^T W x + b without the ReLU")


@checks("toy_forward", hidden=True)
def check_fresh_sizes(impl, ref):
    """Fresh random weights with more hidden dimensions."""
    W, b = torch.randn(5, 3, 7), torch.randn(5, 7)
    x = torch.rand(9, 5, 7)
    expect_close(impl(W, b, x), ref(W, b, x), hint="x' = ReLU(W^T W x + b), per instance")
    expect_close(impl(W, b, x, relu=False), ref(W, b, x, relu=False), what="the linear model's output",
                 hint="with relu=False return W^T W x + b")


# --- toy_loss ---------------------------------------------------------------------------------

@checks("toy_loss")
def check_loss_is_importance_weighted(impl, ref):
    """Only features with nonzero importance count."""
    g = _seeded(20)
    x, x_hat = torch.rand(32, 3, 5, generator=g), torch.rand(32, 3, 5, generator=g)
    importance = torch.tensor([1.0, 0.0, 0.0, 0.5, 0.0])
    expect_close(impl(x, x_hat, importance), ref(x, x_hat, importance), what="the loss",
                 hint="multiply each squared error (x - x_hat) ** 2 by its feature's importance")


@checks("toy_loss")
def check_one_loss_per_instance(impl, ref):
    """Mean over batch and features, one number per instance (here 3 instances, 3 features)."""
    g = _seeded(21)
    x, x_hat = torch.rand(16, 3, 3, generator=g), torch.rand(16, 3, 3, generator=g)
    importance = 0.9 ** torch.arange(3, dtype=torch.float32)
    expect_close(impl(x, x_hat, importance), ref(x, x_hat, importance), what="the per-instance loss",
                 hint="the result has shape [n_instances]: average over the batch (dim 0) and the features "
                      "(dim 2), and keep the instance dimension (dim 1)")


@checks("toy_loss")
def check_importance_per_instance(impl, ref):
    """importance may also be [n_instances, n_features] (the phase diagram uses it)."""
    g = _seeded(22)
    x, x_hat = torch.rand(16, 4, 2, generator=g), torch.rand(16, 4, 2, generator=g)
    importance = torch.tensor([[1.0, 0.1], [1.0, 1.0], [1.0, 3.0], [1.0, 10.0]])
    expect_close(impl(x, x_hat, importance), ref(x, x_hat, importance), what="the per-instance loss",
                 hint="importance * (x - x_hat) ** 2 broadcasts an [n_instances, n_features] importance too")


@checks("toy_loss", hidden=True)
def check_fresh_importance(impl, ref):
    """Fresh inputs and a fresh importance per feature."""
    x, x_hat, importance = torch.rand(24, 3, 6), torch.rand(24, 3, 6), torch.rand(6)
    expect_close(impl(x, x_hat, importance), ref(x, x_hat, importance), what="the per-instance loss",
                 hint="mean over batch and features of importance * (x - x_hat) ** 2, one number per instance")


# --- train_toy_models ----------------------------------------------------------------------------

def _training_setup():
    W, b = _weights(30, 4, 2, 5)
    b = torch.zeros_like(b)
    importance = 0.9 ** torch.arange(5, dtype=torch.float32)
    sparsity = torch.tensor([0.0, 0.7, 0.9, 0.97])
    return W, b, importance, sparsity


def _trained(result, what: str):
    expect(isinstance(result, tuple) and len(result) == 3,
           f"{what} should return a tuple (W, b, losses), got {type(result).__name__}")
    return tuple(expect_tensor(t, f"{what}'s {name}") for t, name in zip(result, ("W", "b", "losses")))


def _eval_loss(W, b, importance, sparsity, seed: int) -> torch.Tensor:
    """Each instance's loss on a large fixed batch, computed here from the formulas."""
    g = _seeded(seed)
    shape = (8192, sparsity.shape[0], W.shape[-1])
    x = torch.rand(shape, generator=g) * (torch.rand(shape, generator=g) < (1 - sparsity)[:, None])
    out = (torch.einsum("ihf,ihg,big->bif", W, W, x) + b).relu()
    return (importance * (x - out) ** 2).mean(dim=(0, 2))


@checks("train_toy_models", points=2)
def check_first_step_is_an_adam_step(impl, ref):
    """After one step every weight and bias moved by about lr (Adam's first step), downhill."""
    _first_step(impl, ref, *_training_setup(), seed=31)


@checks("train_toy_models", hidden=True)
def check_fresh_first_step(impl, ref):
    """Adam's first step from fresh weights and sparsities."""
    W, b = _weights(_fresh_seed(), 3, 2, 6)
    _first_step(impl, ref, W, b, 0.8 ** torch.arange(6, dtype=torch.float32), torch.rand(3) * 0.9, seed=_fresh_seed())


def _first_step(impl, ref, W, b, importance, sparsity, seed: int):
    args = (W, b, importance, sparsity, 1, 4096, 0.01)
    W1, b1, losses = _trained(_run_seeded(seed, impl, *args, progress=False), "train_toy_models")
    rW, rb, rlosses = ref.apply(lambda f: _run_seeded(seed, f, *args, progress=False))
    expect(W1.shape == W.shape and b1.shape == b.shape,
           f"trained W, b have shapes {tuple(W1.shape)}, {tuple(b1.shape)}, expected {tuple(W.shape)}, {tuple(b.shape)}")
    expect(losses.shape == rlosses.shape, f"losses has shape {tuple(losses.shape)}, expected (n_steps, n_instances) = "
           f"{tuple(rlosses.shape)}")
    expect(bool((b1 - b).abs().max() > 0), "the bias b did not change: give both W and b to the optimiser")
    for name, new, old, reference in (("W", W1, W, rW), ("b", b1, b, rb)):
        # Adam's first step moves each parameter by about lr, or not at all where its gradient is
        # exactly zero (a feature whose ReLU never fires): compare with the reference's own step.
        step, reference_step = (new - old).abs(), (reference - old).abs()
        expect(bool(((step - reference_step).abs() < 2e-3).float().mean() > 0.9),
               f"after one step |Δ{name}| ranges from {step.min().item():.3g} to {step.max().item():.3g}; Adam's "
               "first step moves every parameter with a gradient by about lr = 0.01. Use torch.optim.Adam(..., lr=lr)")
        agree = (torch.sign(new - old) == torch.sign(reference - old)).float().mean().item()
        expect(agree > 0.85, f"only {agree:.0%} of {name}'s first-step directions agree with the reference; "
               "minimise the loss (sum over instances), call zero_grad, backward, then step", agree=agree)
    expect_close(losses, rlosses, rtol=0.05, atol=1e-3, what="the first step's losses",
                 hint="record toy_loss of each instance (shape [n_instances]) before the update")


@checks("train_toy_models", points=2)
def check_short_run_reaches_the_reference_loss(impl, ref):
    """A short seeded run ends near the reference's loss, measured on a fixed batch."""
    W, b, importance, sparsity = _training_setup()
    W, b, sparsity = W[1::2], b[1::2], sparsity[1::2]  # S = 0.7 and 0.97: where mistakes show, at half the cost
    args = (W, b, importance, sparsity, 200, 256, 0.01)
    W1, b1, losses = _trained(_run_seeded(32, impl, *args, progress=False), "train_toy_models")
    rW, rb, _ = ref.apply(lambda f: _run_seeded(32, f, *args, progress=False))
    expect(losses.shape == (200, 2), f"losses has shape {tuple(losses.shape)}, expected (n_steps, n_instances) = (200, 2)")
    mine, theirs = _eval_loss(W1, b1, importance, sparsity, 33), _eval_loss(rW, rb, importance, sparsity, 33)
    start = _eval_loss(W, b, importance, sparsity, 33)
    ratio = mine / theirs
    expect(bool(((ratio > 0.8) & (ratio < 1.25)).all()),
           f"after 200 steps the loss per instance is {[f'{v:.2g}' for v in mine.tolist()]} (from "
           f"{[f'{v:.2g}' for v in start.tolist()]}); the reference reaches {[f'{v:.2g}' for v in theirs.tolist()]}. "
           "Draw a fresh batch every step, zero the gradients each step, and train both W and b",
           ratio=ratio.tolist())


@checks("feature_norms", hidden=True)
def check_fresh_weights_norms(impl, ref):
    W = _fresh_weights()
    expect_close(impl(W), ref(W), what="the feature norms", hint="the norm of each column W[i, :, f]")


# --- metrics ---------------------------------------------------------------------------------

@checks("feature_norms")
def check_norm_of_each_feature_column(impl, ref):
    """One norm per (instance, feature): the length of column W[i, :, f]."""
    W, _ = _weights(40, 3, 2, 5)
    expect_close(impl(W), ref(W), what="the feature norms",
                 hint="take the norm over the hidden dimension (dim=1), giving [n_instances, n_features]")


@checks("feature_norms")
def check_known_norms(impl, ref):
    """A feature at (3, 4) has norm 5; an unused feature has norm 0."""
    W = torch.tensor([[[3.0, 0.0, 1.0], [4.0, 0.0, 0.0]]])
    expect_close(impl(W), torch.tensor([[5.0, 0.0, 1.0]]), what="the feature norms of [[3,0,1],[4,0,0]]",
                 hint="||W_i|| is the (unsquared) Euclidean length of feature i's column")


@checks("superposition_per_feature")
def check_orthogonal_features_have_no_superposition(impl, ref):
    """Features on orthogonal axes share nothing: superposition 0, however long they are."""
    W = torch.diag(torch.tensor([1.0, 2.0, 0.5]))[None]
    expect_close(impl(W), torch.zeros(1, 3), atol=1e-5, what="superposition of orthogonal features",
                 hint="leave out the j = i term: a feature does not interfere with itself")


@checks("superposition_per_feature")
def check_only_the_first_factor_is_normalised(impl, ref):
    """Antipodal features of lengths 2 and 1: (W_0-hat . W_1)^2 = 1 but (W_1-hat . W_0)^2 = 4; a short
    feature (length 0.01) is normalised to a unit vector too."""
    W = torch.tensor([[[2.0, -1.0]]])
    expect_close(impl(W), torch.tensor([[1.0, 4.0]]), what="superposition of features at 2 and -1",
                 hint="normalise W_i only (W_i-hat = W_i / ||W_i||) and dot it with the unnormalised W_j, then square")
    W = torch.tensor([[[0.01, -1.0]]])
    expect_close(impl(W), torch.tensor([[1.0, 1e-4]]), what="superposition of features at 0.01 and -1",
                 hint="W_0-hat is the unit vector 1 however short W_0 is: clamp the norm only to avoid dividing by "
                      "0, with a tiny guard such as clamp_min(1e-8); a guard like 0.1 shrinks short features")


@checks("superposition_per_feature")
def check_matches_reference_on_random_weights(impl, ref):
    """Random weights, several instances."""
    W, _ = _weights(41, 3, 2, 6)
    expect_close(impl(W), ref(W), hint="sum over j != i of (W_i-hat . W_j) ** 2, per instance")


@checks("superposition_per_feature", hidden=True)
def check_fresh_weights_superposition(impl, ref):
    W = _fresh_weights()
    expect_close(impl(W), ref(W), atol=1e-5, hint="sum over j != i of (W_i-hat . W_j) ** 2, per instance; an unused "
                 "feature gets 0")


@checks("feature_dimensionality")
def check_known_geometries(impl, ref):
    """A dedicated feature has D = 1, an antipodal pair 1/2 each, a pentagon in 2-D 2/5 each."""
    dedicated = torch.tensor([[[1.5, 0.0], [0.0, 0.7]]])
    expect_close(impl(dedicated), torch.ones(1, 2), what="D of two orthogonal features",
                 hint="D_i = ||W_i||^2 / sum_j (W_i-hat . W_j)^2 with j = i included; an orthogonal feature gets 1")
    antipodal = torch.tensor([[[2.0, -2.0]]])
    expect_close(impl(antipodal), torch.full((1, 2), 0.5), what="D of an antipodal pair of length 2",
                 hint="square the norm in the numerator and normalise only W_i in the denominator")
    pentagon = _pentagon(1.3)[None]
    expect_close(impl(pentagon), torch.full((1, 5), 0.4), atol=1e-5, what="D of a regular pentagon",
                 hint="D_i = ||W_i||^2 / sum_j (W_i-hat . W_j)^2")


@checks("feature_dimensionality")
def check_unused_feature_has_dimensionality_zero(impl, ref):
    """A feature with W_i = 0 gets D_i = 0, not NaN; a short feature (length 0.01) on its own axis gets 1."""
    W = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    D = impl(W)
    expect(not isinstance(D, torch.Tensor) or not D.is_floating_point() or bool(torch.isfinite(D).all()),
           "an unused feature (W_i = 0) gives NaN: 0 / 0. Clamp ||W_i|| (for W_i-hat) and the denominator away "
           "from zero, e.g. .clamp_min(1e-8), so the unused feature gets D_i = 0")
    expect_close(D, torch.tensor([[1.0, 0.0]]), what="D with an unused feature",
                 hint="guard the division: clamp the norm (and the denominator) away from 0 so 0/0 becomes 0")
    short = torch.tensor([[[1.0, 0.0], [0.0, 0.01]]])
    expect_close(impl(short), torch.ones(1, 2), atol=1e-4, what="D of two orthogonal features of lengths 1 and 0.01",
                 hint="a short feature alone on its axis still has D = 1: the guards must only avoid 0/0, e.g. "
                      "clamp_min(1e-8); a guard like 0.1 changes W_i-hat (or the denominator) of short features")


@checks("feature_dimensionality")
def check_matches_reference_on_random_weights(impl, ref):
    """Random weights, several instances."""
    W, _ = _weights(42, 3, 3, 7)
    expect_close(impl(W), ref(W), hint="D_i = ||W_i||^2 / sum_j (W_i-hat . W_j)^2, per instance")


@checks("feature_dimensionality", hidden=True)
def check_fresh_weights_dimensionality(impl, ref):
    W = _fresh_weights()
    expect_close(impl(W), ref(W), atol=1e-5, hint="D_i = ||W_i||^2 / sum_j (W_i-hat . W_j)^2; an unused feature gets 0")


@checks("dimensions_per_feature")
def check_known_models(impl, ref):
    """Two dedicated unit features in m=2: 1 dimension each; a unit pentagon in m=2: 2/5."""
    W = torch.zeros(2, 2, 5)
    W[0, 0, 0] = W[0, 1, 1] = 1.0
    W[1] = _pentagon()
    expect_close(impl(W), torch.tensor([1.0, 0.4]), what="dimensions per feature",
                 hint="m / ||W||_F^2 with m = n_hidden = W.shape[1] and the *squared* Frobenius norm")


@checks("dimensions_per_feature")
def check_matches_reference_on_random_weights(impl, ref):
    """Random weights: one number per instance."""
    W, _ = _weights(43, 4, 3, 8)
    expect_close(impl(W), ref(W), what="dimensions per feature",
                 hint="one number per instance: W.shape[1] / (W ** 2).sum over the hidden and feature dims")


@checks("dimensions_per_feature", hidden=True)
def check_fresh_weights_dimensions(impl, ref):
    W = _fresh_weights()
    expect_close(impl(W), ref(W), what="dimensions per feature", hint="W.shape[1] / ||W||_F^2, per instance")


@checks("classify_phase")
def check_the_three_phases(impl, ref):
    """Handmade n=2, m=1 models in each phase, with antipodal (negative) weights and borderline norms."""
    W = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0], [0.9, 0.49], [0.2, -0.8], [-1.1, 0.9]])[:, None, :]
    expected = torch.tensor([0, 1, 2, 0, 1, 2])
    expect_close(impl(W), expected, what="the phases",
                 hint="0: feature 1 (the extra one) has ||W_1|| < 0.5; 1: it is represented and feature 0 is not; "
                      "2: both are represented. Use norms, so negative weights count, and return int64")
    boundary = torch.tensor([[0.5, 0.5], [0.0, -0.5], [-0.5, 0.25], [0.25, 0.5]])[:, None, :]
    expect_close(impl(boundary), torch.tensor([2, 1, 0, 1]), what="the phases of models with norms exactly 0.5",
                 hint="a norm of exactly 0.5 counts as represented: compare with >= 0.5, not > 0.5")


@checks("classify_phase")
def check_more_hidden_dimensions(impl, ref):
    """With m=2 the norm is taken over the hidden dimension."""
    W = torch.tensor([[[0.4, 0.0], [0.4, 0.6]], [[0.3, 0.3], [0.0, 0.3]], [[0.0, 0.7], [0.1, 0.0]]])
    expect_close(impl(W), ref(W), what="the phases",
                 hint="a feature is represented when the norm of its column W[i, :, f] is at least 0.5")


@checks("classify_phase", hidden=True)
def check_fresh_models(impl, ref):
    """Fresh n=2 models with one or two hidden dimensions, norms spread around the 0.5 threshold."""
    W = (torch.rand(12, int(torch.randint(1, 3, ())), 2) * 2 - 1) * 0.8
    expect_close(impl(W), ref(W), what="the phases",
                 hint="compare the norm of each feature's column W[i, :, f] with 0.5; return int64")
