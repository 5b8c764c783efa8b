"""Realistic wrong versions of chapter 04's exercises."""
import torch

from solutions.ch04_superposition import generate_batch, toy_forward, toy_loss


# --- feature_importance ----------------------------------------------------------------------

def importance_from_one(n_features, decay):
    """Starts the exponent at 1, so the first feature has importance `decay`."""
    return decay ** torch.arange(1, n_features + 1, dtype=torch.float32)


def importance_linear(n_features, decay):
    """Decays linearly (1 - i (1 - decay)) instead of geometrically."""
    return 1 - torch.arange(n_features, dtype=torch.float32) * (1 - decay)


def importance_float64(n_features, decay):
    """Right values, built as a float64 list."""
    return torch.tensor([decay**i for i in range(n_features)], dtype=torch.float64)


# --- generate_batch --------------------------------------------------------------------------

def present_with_probability_s(n_batch, sparsity, n_features):
    """A feature is present with probability S instead of 1 - S."""
    shape = (n_batch, sparsity.shape[0], n_features)
    return torch.where(torch.rand(shape) < sparsity[:, None], torch.rand(shape), torch.zeros(()))


def gaussian_values(n_batch, sparsity, n_features):
    """Draws feature values from torch.randn instead of uniform on [0, 1]."""
    shape = (n_batch, sparsity.shape[0], n_features)
    return torch.where(torch.rand(shape) < (1 - sparsity)[:, None], torch.randn(shape), torch.zeros(()))


def one_mask_per_example(n_batch, sparsity, n_features):
    """Decides presence once per example, so all features of an example appear together."""
    present = torch.rand(n_batch, sparsity.shape[0], 1) < (1 - sparsity)[:, None]
    return torch.rand(n_batch, sparsity.shape[0], n_features) * present


def float64_batch(n_batch, sparsity, n_features):
    """Right distribution, but float64."""
    return generate_batch(n_batch, sparsity, n_features).double()


# --- toy_forward -----------------------------------------------------------------------------

def relu_on_hidden(W, b, x, relu=True):
    """Puts the ReLU on the hidden layer h = W x instead of on the output."""
    hidden = torch.einsum("ihf,bif->bih", W, x)
    hidden = hidden.relu() if relu else hidden
    return torch.einsum("ihf,bih->bif", W, hidden) + b


def forgets_bias(W, b, x, relu=True):
    """Leaves out the bias."""
    out = torch.einsum("ihf,ihg,big->bif", W, W, x)
    return out.relu() if relu else out


def bias_after_relu(W, b, x, relu=True):
    """Adds the bias after the ReLU."""
    out = torch.einsum("ihf,ihg,big->bif", W, W, x)
    return (out.relu() if relu else out) + b


def always_relu(W, b, x, relu=True):
    """Ignores the relu flag."""
    return (torch.einsum("ihf,ihg,big->bif", W, W, x) + b).relu()


# --- toy_loss ---------------------------------------------------------------------------------

def unweighted_loss(x, x_hat, importance):
    """Forgets the importance weights."""
    return ((x - x_hat) ** 2).mean(dim=(0, 2))


def mean_over_instances(x, x_hat, importance):
    """Averages over batch and instances, keeping the features."""
    return (importance * (x - x_hat) ** 2).mean(dim=(0, 1))


def sum_instead_of_mean(x, x_hat, importance):
    """Sums over the features instead of averaging."""
    return (importance * (x - x_hat) ** 2).sum(dim=2).mean(dim=0)


def absolute_error(x, x_hat, importance):
    """Uses the absolute error instead of the squared error."""
    return (importance * (x - x_hat).abs()).mean(dim=(0, 2))


def importance_indexed_by_instance(x, x_hat, importance):
    """Weights by the first row/feature only: treats importance as a single number per feature of instance 0."""
    return (importance.reshape(-1)[: x.shape[-1]] * (x - x_hat) ** 2).mean(dim=(0, 2))


# --- train_toy_models --------------------------------------------------------------------------

def _train(W, b, importance, sparsity, n_steps, batch_size, lr, relu, *, optimiser="adam", train_b=True,
           zero_grad=True, fixed_batch=False):
    W = W.detach().clone().requires_grad_(True)
    b = b.detach().clone().requires_grad_(train_b)
    params = [W, b] if train_b else [W]
    opt = (torch.optim.Adam if optimiser == "adam" else torch.optim.SGD)(params, lr=lr)
    losses = []
    x = generate_batch(batch_size, sparsity, W.shape[-1])
    with torch.enable_grad():
        for _ in range(n_steps):
            if not fixed_batch:
                x = generate_batch(batch_size, sparsity, W.shape[-1])
            loss = toy_loss(x, toy_forward(W, b, x, relu), importance)
            if zero_grad:
                opt.zero_grad()
            loss.sum().backward()
            opt.step()
            losses.append(loss.detach())
    return W.detach(), b.detach(), torch.stack(losses)


def trains_only_W(W, b, importance, sparsity, n_steps, batch_size=1024, lr=1e-3, relu=True, progress=True):
    """Gives only W to the optimiser, so the bias never learns."""
    return _train(W, b, importance, sparsity, n_steps, batch_size, lr, relu, train_b=False)


def plain_sgd(W, b, importance, sparsity, n_steps, batch_size=1024, lr=1e-3, relu=True, progress=True):
    """Uses plain SGD instead of Adam."""
    return _train(W, b, importance, sparsity, n_steps, batch_size, lr, relu, optimiser="sgd")


def one_batch_for_all_steps(W, b, importance, sparsity, n_steps, batch_size=1024, lr=1e-3, relu=True,
                            progress=True):
    """Draws one batch before the loop and trains on it every step."""
    return _train(W, b, importance, sparsity, n_steps, batch_size, lr, relu, fixed_batch=True)


def gradient_ascent(W, b, importance, sparsity, n_steps, batch_size=1024, lr=1e-3, relu=True, progress=True):
    """Maximises the loss (Adam with maximize=True, a sign slip)."""
    W = W.detach().clone().requires_grad_(True)
    b = b.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([W, b], lr=lr, maximize=True)
    losses = []
    with torch.enable_grad():
        for _ in range(n_steps):
            x = generate_batch(batch_size, sparsity, W.shape[-1])
            loss = toy_loss(x, toy_forward(W, b, x, relu), importance)
            opt.zero_grad()
            loss.sum().backward()
            opt.step()
            losses.append(loss.detach())
    return W.detach(), b.detach(), torch.stack(losses)


def trains_in_place(W, b, importance, sparsity, n_steps, batch_size=1024, lr=1e-3, relu=True, progress=True):
    """Trains the caller's W and b tensors in place instead of copies."""
    W.requires_grad_(True)
    b.requires_grad_(True)
    opt = torch.optim.Adam([W, b], lr=lr)
    losses = []
    with torch.enable_grad():
        for _ in range(n_steps):
            x = generate_batch(batch_size, sparsity, W.shape[-1])
            loss = toy_loss(x, toy_forward(W, b, x, relu), importance)
            opt.zero_grad()
            loss.sum().backward()
            opt.step()
            losses.append(loss.detach())
    W.requires_grad_(False)
    b.requires_grad_(False)
    return W.detach().clone(), b.detach().clone(), torch.stack(losses)


# --- metrics ---------------------------------------------------------------------------------

def norms_over_features(W):
    """Takes the norm over the feature dimension, one per hidden dimension."""
    return W.norm(dim=2)


def squared_norms(W):
    """Returns ||W_i||^2 instead of ||W_i||."""
    return (W**2).sum(dim=1)


def superposition_including_self(W):
    """Sums over every j, i included."""
    W_hat = W / W.norm(dim=1, keepdim=True).clamp_min(1e-8)
    return (torch.einsum("ihf,ihg->ifg", W_hat, W) ** 2).sum(-1)


def superposition_unnormalised(W):
    """Uses W_i . W_j without normalising W_i."""
    overlaps = torch.einsum("ihf,ihg->ifg", W, W) ** 2
    return (overlaps * (1 - torch.eye(W.shape[-1]))).sum(-1)


def superposition_both_normalised(W):
    """Normalises both W_i and W_j (cosine similarities squared)."""
    W_hat = W / W.norm(dim=1, keepdim=True).clamp_min(1e-8)
    overlaps = torch.einsum("ihf,ihg->ifg", W_hat, W_hat) ** 2
    return (overlaps * (1 - torch.eye(W.shape[-1]))).sum(-1)


def superposition_large_guard(W):
    """Clamps the norm at 0.1 instead of 1e-8, so a short feature's W_i-hat is shorter than a unit vector."""
    W_hat = W / W.norm(dim=1, keepdim=True).clamp_min(0.1)
    overlaps = torch.einsum("ihf,ihg->ifg", W_hat, W) ** 2
    return (overlaps * (1 - torch.eye(W.shape[-1]))).sum(-1)


def dimensionality_without_self(W):
    """Leaves the j = i term out of the denominator."""
    norms = W.norm(dim=1)
    W_hat = W / norms[:, None, :].clamp_min(1e-8)
    overlaps = torch.einsum("ihf,ihg->ifg", W_hat, W) ** 2
    return norms**2 / (overlaps * (1 - torch.eye(W.shape[-1]))).sum(-1).clamp_min(1e-12)


def dimensionality_unsquared_norm(W):
    """Uses ||W_i|| instead of ||W_i||^2 in the numerator."""
    norms = W.norm(dim=1)
    W_hat = W / norms[:, None, :].clamp_min(1e-8)
    overlaps = (torch.einsum("ihf,ihg->ifg", W_hat, W) ** 2).sum(-1)
    return norms / overlaps.clamp_min(1e-12)


def dimensionality_nan_for_unused(W):
    """Right formula, but 0/0 = NaN for a feature the model does not use."""
    norms = W.norm(dim=1)
    W_hat = W / norms[:, None, :]
    overlaps = (torch.einsum("ihf,ihg->ifg", W_hat, W) ** 2).sum(-1)
    return norms**2 / overlaps


def dimensionality_large_guard(W):
    """Guards the divisions with 0.1 instead of 1e-8, which changes D of a short (but used) feature."""
    norms = W.norm(dim=1)
    W_hat = W / norms[:, None, :].clamp_min(0.1)
    overlaps = (torch.einsum("ihf,ihg->ifg", W_hat, W) ** 2).sum(-1)
    return norms**2 / overlaps.clamp_min(0.1)


def dimensions_per_feature_n_over(W):
    """Divides n (features) instead of m (hidden dimensions) by ||W||_F^2."""
    return W.shape[2] / (W**2).sum(dim=(1, 2))


def dimensions_per_feature_unsquared(W):
    """Divides by the Frobenius norm instead of its square."""
    return W.shape[1] / W.norm(dim=(1, 2))


def dimensions_per_feature_mean_over_instances(W):
    """One number for all instances together."""
    return (W.shape[1] / (W**2).sum(dim=(1, 2))).mean()


# --- classify_phase -------------------------------------------------------------------------

def phase_features_swapped(W):
    """Treats feature 0 as the extra feature."""
    return _phase(W.norm(dim=1).flip(-1))


def phase_on_signed_weights(W):
    """Thresholds the signed weight instead of the norm, so antipodal (negative) features look unused."""
    return _phase(W.sum(dim=1))


def phase_codes_swapped(W):
    """Returns 2 for a dedicated dimension and 1 for superposition."""
    phase = _phase(W.norm(dim=1))
    return torch.where(phase == 0, phase, 3 - phase)


def phase_on_max_entry(W):
    """Uses the largest absolute entry of the column instead of its norm."""
    return _phase(W.abs().amax(dim=1))


def phase_strict_threshold(W):
    """Uses > 0.5 instead of >= 0.5, so a feature of norm exactly 0.5 counts as unused."""
    return _phase(W.norm(dim=1), strict=True)


def _phase(size, strict=False):
    represented = size > 0.5 if strict else size >= 0.5
    phase = torch.zeros(size.shape[0], dtype=torch.int64)
    phase[represented[:, 1] & ~represented[:, 0]] = 1
    phase[represented[:, 1] & represented[:, 0]] = 2
    return phase


WRONG = {
    "feature_importance": [importance_from_one, importance_linear, importance_float64],
    "generate_batch": [present_with_probability_s, gaussian_values, one_mask_per_example, float64_batch],
    "toy_forward": [relu_on_hidden, forgets_bias, bias_after_relu, always_relu],
    "toy_loss": [unweighted_loss, mean_over_instances, sum_instead_of_mean, absolute_error,
                 importance_indexed_by_instance],
    "train_toy_models": [trains_only_W, plain_sgd, one_batch_for_all_steps, gradient_ascent, trains_in_place],
    "feature_norms": [norms_over_features, squared_norms],
    "superposition_per_feature": [superposition_including_self, superposition_unnormalised,
                                  superposition_both_normalised, superposition_large_guard],
    "feature_dimensionality": [dimensionality_without_self, dimensionality_unsquared_norm,
                               dimensionality_nan_for_unused, dimensionality_large_guard],
    "dimensions_per_feature": [dimensions_per_feature_n_over, dimensions_per_feature_unsquared,
                               dimensions_per_feature_mean_over_instances],
    "classify_phase": [phase_features_swapped, phase_on_signed_weights, phase_codes_swapped, phase_on_max_entry,
                       phase_strict_threshold],
}
