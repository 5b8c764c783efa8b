"""Reference solutions for chapter 04: superposition in toy models (Elhage et al. 2022).

Shapes used throughout: ``W`` is ``[n_instances, n_hidden, n_features]`` (column ``W[i, :, f]``
is where instance ``i`` puts feature ``f``), ``b`` is ``[n_instances, n_features]`` and a batch
``x`` is ``[n_batch, n_instances, n_features]``. Each function below is pasted into the solved
notebook, so it uses only what the notebook imports (torch, Tensor, tqdm) and the exercises
defined before it.
"""
import torch
from torch import Tensor
from tqdm.auto import tqdm


def feature_importance(n_features: int, decay: float) -> Tensor:
    """The importance of each feature, decaying geometrically: ``importance[i] = decay ** i``.

    Returns a float32 tensor of shape [n_features]; the first feature has importance 1.
    """
    return decay ** torch.arange(n_features, dtype=torch.float32)


def generate_batch(n_batch: int, sparsity: Tensor, n_features: int) -> Tensor:
    """A batch of sparse synthetic features, for every instance at once.

    sparsity: [n_instances], the probability S that a feature is *absent* (zero) in instance i.
    Returns a float32 tensor [n_batch, n_instances, n_features] where each entry independently is
    present with probability 1 - S (of its instance) and then uniform in [0, 1], else exactly 0.
    """
    shape = (n_batch, sparsity.shape[0], n_features)
    values = torch.rand(shape)
    present = torch.rand(shape) < (1 - sparsity)[:, None]
    return torch.where(present, values, torch.zeros(()))


def toy_forward(W: Tensor, b: Tensor, x: Tensor, relu: bool = True) -> Tensor:
    """The toy model x' = ReLU(W^T W x + b), for every instance at once.

    W: [n_instances, n_hidden, n_features], b: [n_instances, n_features],
    x: [n_batch, n_instances, n_features]. Instance i compresses x[:, i] to h = W[i] x (n_hidden
    numbers), reconstructs W[i]^T h + b[i], and applies the ReLU when ``relu`` is True (the
    linear model, for contrast, skips it). Returns [n_batch, n_instances, n_features].
    """
    hidden = torch.einsum("ihf,bif->bih", W, x)
    out = torch.einsum("ihf,bih->bif", W, hidden) + b
    return out.relu() if relu else out


def toy_loss(x: Tensor, x_hat: Tensor, importance: Tensor) -> Tensor:
    """The importance-weighted reconstruction loss, one number per instance.

    x, x_hat: [n_batch, n_instances, n_features]; importance: [n_features] (or
    [n_instances, n_features]). Returns [n_instances]: the mean over the batch and the features
    of importance * (x - x_hat) ** 2.
    """
    return (importance * (x - x_hat) ** 2).mean(dim=(0, 2))


def train_toy_models(W: Tensor, b: Tensor, importance: Tensor, sparsity: Tensor, n_steps: int,
                     batch_size: int = 1024, lr: float = 1e-3, relu: bool = True,
                     progress: bool = True) -> tuple[Tensor, Tensor, Tensor]:
    """Train every instance at once with Adam, starting from W and b (left unchanged).

    Each step draws a fresh batch with ``generate_batch(batch_size, sparsity, n_features)``,
    computes ``toy_loss`` of ``toy_forward(W, b, x, relu)`` and minimises the *sum* over
    instances (so each instance gets its own gradient). Shows a tqdm progress bar when
    ``progress``. Returns (trained W, trained b, losses [n_steps, n_instances]), detached.
    """
    W = W.detach().clone().requires_grad_(True)
    b = b.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([W, b], lr=lr)
    losses = []
    with torch.enable_grad():  # the autograder may call us inside torch.no_grad()
        for _ in tqdm(range(n_steps), desc="training", disable=not progress):
            x = generate_batch(batch_size, sparsity, W.shape[-1])
            loss = toy_loss(x, toy_forward(W, b, x, relu), importance)
            optimizer.zero_grad()
            loss.sum().backward()
            optimizer.step()
            losses.append(loss.detach())
    return W.detach(), b.detach(), torch.stack(losses)


def feature_norms(W: Tensor) -> Tensor:
    """||W_i||, the length of each feature's direction in the hidden space.

    W: [n_instances, n_hidden, n_features]. Returns [n_instances, n_features].
    """
    return W.norm(dim=1)


def superposition_per_feature(W: Tensor) -> Tensor:
    """How much each feature shares its direction with the others: sum_{j != i} (W_i-hat . W_j)^2.

    W_i-hat is W_i divided by its norm (a feature with zero norm has W_i-hat = 0, so 0 here).
    W: [n_instances, n_hidden, n_features]. Returns [n_instances, n_features].
    """
    W_hat = W / W.norm(dim=1, keepdim=True).clamp_min(1e-8)
    overlaps = torch.einsum("ihf,ihg->ifg", W_hat, W) ** 2
    off_diagonal = 1 - torch.eye(W.shape[-1], dtype=W.dtype)
    return (overlaps * off_diagonal).sum(-1)


def feature_dimensionality(W: Tensor) -> Tensor:
    """The fraction of a dimension each feature gets: D_i = ||W_i||^2 / sum_j (W_i-hat . W_j)^2.

    The sum runs over every feature j, i itself included. A feature with zero norm gets D_i = 0.
    W: [n_instances, n_hidden, n_features]. Returns [n_instances, n_features].
    """
    norms = W.norm(dim=1)
    W_hat = W / norms[:, None, :].clamp_min(1e-8)
    overlaps = (torch.einsum("ihf,ihg->ifg", W_hat, W) ** 2).sum(-1)
    return norms**2 / overlaps.clamp_min(1e-12)


def dimensions_per_feature(W: Tensor) -> Tensor:
    """How many hidden dimensions each learned feature gets on average: m / ||W||_F^2.

    m is n_hidden; ||W||_F^2 is the squared Frobenius norm of the instance's W, roughly the
    number of features it represents. W: [n_instances, n_hidden, n_features].
    Returns [n_instances].
    """
    return W.shape[1] / (W**2).sum(dim=(1, 2))


def classify_phase(W: Tensor) -> Tensor:
    """Classify trained n=2 models: what happened to the extra feature (feature 1)?

    W: [n_instances, n_hidden, 2]; feature 0 is the reference feature, feature 1 the extra one.
    A feature counts as represented when its norm ||W_i|| is at least 0.5. Returns an int64
    tensor [n_instances] with, per instance:
      0: the extra feature is not represented;
      1: the extra feature has a dedicated dimension (it is represented, feature 0 is not);
      2: superposition (both features are represented).
    """
    represented = W.norm(dim=1) >= 0.5
    phase = torch.zeros(W.shape[0], dtype=torch.int64)
    phase[represented[:, 1] & ~represented[:, 0]] = 1
    phase[represented[:, 1] & represented[:, 0]] = 2
    return phase
