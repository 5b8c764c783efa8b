"""Reference solutions for chapter 06: steering and representation engineering."""
import torch
from torch import Tensor


def contrastive_activations(model, prompts: list[str], starts: list[int], layer: int) -> Tensor:
    """The residual stream entering ``layer``, averaged over each prompt's positions from ``starts[i]`` on.

    model: a TransformerLens model (the bridge). prompts: texts, run as one batch:
    ``model.to_tokens(prompts)`` puts BOS first and pads shorter prompts on the right, and since
    attention is causal the padding never changes a real position. starts: for prompt i, the
    first position averaged (BOS is position 0). layer: read ``blocks.{layer}.hook_resid_pre``.
    Returns [len(prompts), d_model]: row i is the mean of that activation over positions
    starts[i] .. n_i - 1, where n_i = model.to_tokens(prompts[i]).shape[1] is prompt i's own length.
    """
    name = f"blocks.{layer}.hook_resid_pre"
    with torch.no_grad():
        _, cache = model.run_with_cache(model.to_tokens(prompts), names_filter=name)
    lengths = [model.to_tokens(prompt).shape[1] for prompt in prompts]
    return torch.stack([cache[name][i, start:n].mean(dim=0) for i, (start, n) in enumerate(zip(starts, lengths))])


def mean_difference_direction(pos_acts: Tensor, neg_acts: Tensor) -> Tensor:
    """The difference of the class means: mean(pos_acts) - mean(neg_acts).

    pos_acts: [n_pos, d_model]; neg_acts: [n_neg, d_model] (the two counts may differ).
    Returns [d_model], not normalised: its norm says how far apart the classes sit.
    """
    return pos_acts.mean(dim=0) - neg_acts.mean(dim=0)


def separation_statistic(pos_proj: Tensor, neg_proj: Tensor) -> float:
    """Cohen's d between two sets of projections onto a direction.

    pos_proj: [n_pos]; neg_proj: [n_neg]. Returns (mean(pos) - mean(neg)) / s, where s is the
    pooled standard deviation: s^2 = ((n_pos - 1) var_pos + (n_neg - 1) var_neg) / (n_pos + n_neg - 2),
    with unbiased variances. Positive when the positive class projects higher.
    """
    n_pos, n_neg = len(pos_proj), len(neg_proj)
    pooled = ((n_pos - 1) * pos_proj.var() + (n_neg - 1) * neg_proj.var()) / (n_pos + n_neg - 2)
    return float((pos_proj.mean() - neg_proj.mean()) / pooled.sqrt())


def train_probe(acts: Tensor, labels: Tensor, steps: int = 200, lr: float = 0.05,
                weight_decay: float = 1e-3) -> tuple[Tensor, Tensor]:
    """A logistic-regression probe, trained with torch.

    acts: [n, d_model]; labels: [n] of 0 and 1. The probe's logit is acts @ w + b. Start from
    w = zeros(d_model), b = zeros(()) (so the result is deterministic), then take ``steps``
    full-batch steps of torch.optim.Adam(lr=lr) on the mean binary cross-entropy with logits
    plus weight_decay * (w ** 2).sum(). Returns (w, b), detached.
    """
    acts, labels = acts.detach().float(), labels.float()
    w = torch.zeros(acts.shape[1], requires_grad=True)
    b = torch.zeros((), requires_grad=True)
    optimizer = torch.optim.Adam([w, b], lr=lr)
    with torch.enable_grad():  # also when called under torch.no_grad()
        for _ in range(steps):
            optimizer.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(acts @ w + b, labels)
            (loss + weight_decay * (w ** 2).sum()).backward()
            optimizer.step()
    return w.detach(), b.detach()


def mean_difference_classifier(acts: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """The mean-difference direction used as a classifier, with no training.

    acts: [n, d_model]; labels: [n] of 0 and 1. w = mean(acts of class 1) - mean(acts of class 0);
    the threshold sits halfway between the two class means, so b = -w . (mu_1 + mu_0) / 2.
    Returns (w, b): predict class 1 when acts @ w + b > 0.
    """
    mu_1, mu_0 = acts[labels == 1].mean(dim=0), acts[labels == 0].mean(dim=0)
    w = mu_1 - mu_0
    return w, -(w @ (mu_1 + mu_0)) / 2


def steered_logits(model, tokens: Tensor, layer: int, vector: Tensor) -> Tensor:
    """Activation addition: the model's logits with ``vector`` added to the residual stream.

    tokens: [batch, pos]. vector: [d_model], added at every position of
    ``blocks.{layer}.hook_resid_pre``. Returns the logits [batch, pos, d_vocab]; the model is
    left without hooks.
    """
    def add(act, hook):
        return act + vector.to(act.dtype)

    with torch.no_grad(), model.hooks(fwd_hooks=[(f"blocks.{layer}.hook_resid_pre", add)]):
        return model(tokens)


def placebo_direction(direction: Tensor, seed: int) -> Tensor:
    """A random direction with the same norm as ``direction``: the control that must not steer.

    Draw torch.randn(d_model, generator=torch.Generator().manual_seed(seed)) and rescale it to
    the norm of ``direction``. Returns [d_model].
    """
    noise = torch.randn(direction.shape[-1], generator=torch.Generator().manual_seed(seed))
    return noise * (direction.norm() / noise.norm())


def kl_cost(clean_logits: Tensor, steered_logits: Tensor) -> Tensor:
    """What steering costs: KL(clean || steered) of the next-token distributions.

    Both [batch, pos, d_vocab]. Returns a scalar tensor: the KL divergence
    sum_v p_clean(v) (log p_clean(v) - log p_steered(v)) at every position, averaged over
    positions and the batch.
    """
    clean, steered = clean_logits.log_softmax(dim=-1), steered_logits.log_softmax(dim=-1)
    return (clean.exp() * (clean - steered)).sum(dim=-1).mean()


def ablate_direction(acts: Tensor, direction: Tensor) -> Tensor:
    """Project ``direction`` out of activations: acts - (acts . u) u with u the unit direction.

    acts: [..., d_model]; direction: [d_model], any norm. Returns a new tensor of acts' shape
    whose component along the direction is zero.
    """
    unit = direction / direction.norm()
    return acts - (acts @ unit)[..., None] * unit


def orthogonalize_weights(name: str, weight: Tensor, direction: Tensor) -> Tensor:
    """One of the model's weights, made unable to write along ``direction`` into the residual stream.

    name: its TransformerLens name (W_E, W_pos, W_Q, b_Q, ..., W_O, b_O, W_in, b_in, W_out,
    b_out, W_U, b_U); weight: its tensor, in TransformerLens's shape, where a weight that writes
    into the residual stream has d_model as its last dimension. The writers (W_E, W_pos, W_O,
    b_O, W_out, b_out) become weight - (weight . u) u, u the unit direction; every other weight
    only reads the stream (or never touches it) and comes back unchanged, as a new tensor.
    """
    if name not in ("W_E", "W_pos", "W_O", "b_O", "W_out", "b_out"):
        return weight.clone()
    unit = direction / direction.norm()
    return weight - (weight @ unit)[..., None] * unit


def first_principal_component(diffs: Tensor) -> Tensor:
    """The top principal component of a set of vectors, signed to agree with their mean.

    diffs: [n, d_model] (e.g. pos_i - neg_i of contrastive pairs). Centre the rows, take the
    first right-singular vector (torch.linalg.svd), and flip its sign if it has a negative dot
    product with the uncentred mean of the rows. Returns a unit vector [d_model].
    """
    centred = diffs - diffs.mean(dim=0)
    component = torch.linalg.svd(centred, full_matrices=False).Vh[0]
    return component if component @ diffs.mean(dim=0) >= 0 else -component
