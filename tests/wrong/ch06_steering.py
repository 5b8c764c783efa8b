"""Realistic wrong versions of chapter 06's exercises."""
import torch

from solutions.ch06_steering import train_probe as _train_probe


# --- contrastive_activations


def _cached(model, prompts, hook_name):
    with torch.no_grad():
        _, cache = model.run_with_cache(model.to_tokens(prompts), names_filter=hook_name)
    return cache[hook_name]


def reads_resid_post(model, prompts, starts, layer):
    """Reads the stream leaving the layer instead of entering it."""
    acts = _cached(model, prompts, f"blocks.{layer}.hook_resid_post")
    lengths = [model.to_tokens(p).shape[1] for p in prompts]
    return torch.stack([acts[i, s:n].mean(0) for i, (s, n) in enumerate(zip(starts, lengths))])


def averages_into_the_padding(model, prompts, starts, layer):
    """Averages to the end of the padded batch, pad tokens included."""
    acts = _cached(model, prompts, f"blocks.{layer}.hook_resid_pre")
    return torch.stack([acts[i, s:].mean(0) for i, s in enumerate(starts)])


def ignores_starts(model, prompts, starts, layer):
    """Averages every position, BOS included."""
    acts = _cached(model, prompts, f"blocks.{layer}.hook_resid_pre")
    lengths = [model.to_tokens(p).shape[1] for p in prompts]
    return torch.stack([acts[i, :n].mean(0) for i, n in enumerate(lengths)])


def starts_without_bos(model, prompts, starts, layer):
    """Counts positions as if there were no BOS, so starts one token late."""
    acts = _cached(model, prompts, f"blocks.{layer}.hook_resid_pre")
    lengths = [model.to_tokens(p).shape[1] for p in prompts]
    return torch.stack([acts[i, min(s + 1, n - 1):n].mean(0) for i, (s, n) in enumerate(zip(starts, lengths))])


# --- mean_difference_direction


def normalised_difference(pos_acts, neg_acts):
    """Returns the unit direction."""
    d = pos_acts.mean(0) - neg_acts.mean(0)
    return d / d.norm()


def negative_minus_positive(pos_acts, neg_acts):
    """Subtracts the wrong way round."""
    return neg_acts.mean(0) - pos_acts.mean(0)


def paired_differences(pos_acts, neg_acts):
    """Averages row-wise differences, silently dropping the extra rows of the larger class."""
    n = min(len(pos_acts), len(neg_acts))
    return (pos_acts[:n] - neg_acts[:n]).mean(0)


# --- separation_statistic


def biased_variances(pos_proj, neg_proj):
    """Pools the biased (divide by n) variances."""
    n_pos, n_neg = len(pos_proj), len(neg_proj)
    pooled = (n_pos * pos_proj.var(unbiased=False) + n_neg * neg_proj.var(unbiased=False)) / (n_pos + n_neg)
    return float((pos_proj.mean() - neg_proj.mean()) / pooled.sqrt())


def averaged_deviations(pos_proj, neg_proj):
    """Averages the two standard deviations, ignoring the class sizes."""
    return float((pos_proj.mean() - neg_proj.mean()) / ((pos_proj.std() + neg_proj.std()) / 2))


def absolute_separation(pos_proj, neg_proj):
    """Drops the sign."""
    n_pos, n_neg = len(pos_proj), len(neg_proj)
    pooled = ((n_pos - 1) * pos_proj.var() + (n_neg - 1) * neg_proj.var()) / (n_pos + n_neg - 2)
    return float((pos_proj.mean() - neg_proj.mean()).abs() / pooled.sqrt())


# --- train_probe


def probe_without_weight_decay(acts, labels, steps=200, lr=0.05, weight_decay=1e-3):
    """Forgets the weight penalty."""
    return _train_probe(acts, labels, steps, lr, 0.0)


def probe_with_sgd(acts, labels, steps=200, lr=0.05, weight_decay=1e-3):
    """Plain gradient descent instead of Adam."""
    acts, labels = acts.float(), labels.float()
    w, b = torch.zeros(acts.shape[1], requires_grad=True), torch.zeros((), requires_grad=True)
    optimizer = torch.optim.SGD([w, b], lr=lr)
    with torch.enable_grad():  # also when called under torch.no_grad()
        for _ in range(steps):
            optimizer.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(acts @ w + b, labels)
            (loss + weight_decay * (w ** 2).sum()).backward()
            optimizer.step()
    return w.detach(), b.detach()


def probe_for_the_other_class(acts, labels, steps=200, lr=0.05, weight_decay=1e-3):
    """Trains on flipped labels, so a positive logit means class 0."""
    return _train_probe(acts, 1 - labels, steps, lr, weight_decay)


# --- mean_difference_classifier


def threshold_at_zero(acts, labels):
    """Leaves the bias at zero."""
    return acts[labels == 1].mean(0) - acts[labels == 0].mean(0), torch.tensor(0.0)


def threshold_at_the_data_mean(acts, labels):
    """Puts the threshold at the mean of all rows, which unbalanced classes pull aside."""
    w = acts[labels == 1].mean(0) - acts[labels == 0].mean(0)
    return w, -(w @ acts.mean(0))


# --- steered_logits


def steers_the_layer_output(model, tokens, layer, vector):
    """Adds the vector to the stream leaving the layer."""
    with torch.no_grad(), model.hooks(fwd_hooks=[(f"blocks.{layer}.hook_resid_post", lambda a, hook: a + vector)]):
        return model(tokens)


def steers_the_last_position_only(model, tokens, layer, vector):
    """Adds the vector at the last position alone."""
    def add(act, hook):
        act = act.clone()
        act[:, -1] += vector
        return act

    with torch.no_grad(), model.hooks(fwd_hooks=[(f"blocks.{layer}.hook_resid_pre", add)]):
        return model(tokens)


def leaves_the_steering_hook(model, tokens, layer, vector):
    """Adds a hook and never removes it."""
    model.add_hook(f"blocks.{layer}.hook_resid_pre", lambda a, hook: a + vector)
    with torch.no_grad():
        return model(tokens)


def steers_with_the_unit_vector(model, tokens, layer, vector):
    """Normalises the vector, losing its norm (the steering strength)."""
    unit = vector / vector.norm()
    with torch.no_grad(), model.hooks(fwd_hooks=[(f"blocks.{layer}.hook_resid_pre", lambda a, hook: a + unit)]):
        return model(tokens)


# --- placebo_direction


def unit_placebo(direction, seed):
    """Forgets to match the norm."""
    noise = torch.randn(direction.shape[-1], generator=torch.Generator().manual_seed(seed))
    return noise / noise.norm()


def uniform_placebo(direction, seed):
    """Draws from torch.rand: every component positive, a direction far from random."""
    noise = torch.rand(direction.shape[-1], generator=torch.Generator().manual_seed(seed))
    return noise * direction.norm() / noise.norm()


def unseeded_placebo(direction, seed):
    """Uses the global generator, so the placebo changes from run to run."""
    noise = torch.randn(direction.shape[-1])
    return noise * direction.norm() / noise.norm()


# --- kl_cost


def reversed_kl(clean_logits, steered_logits):
    """KL(steered || clean)."""
    clean, steered = clean_logits.log_softmax(-1), steered_logits.log_softmax(-1)
    return (steered.exp() * (steered - clean)).sum(-1).mean()


def kl_of_raw_logits(clean_logits, steered_logits):
    """Treats raw logits as log-probabilities."""
    return (clean_logits.softmax(-1) * (clean_logits - steered_logits)).sum(-1).mean()


def kl_summed_over_positions(clean_logits, steered_logits):
    """Sums over positions instead of averaging."""
    clean, steered = clean_logits.log_softmax(-1), steered_logits.log_softmax(-1)
    return (clean.exp() * (clean - steered)).sum(-1).sum(-1).mean()


# --- ablate_direction


def ablates_unnormalised_direction(acts, direction):
    """Uses the raw direction as if it were a unit vector."""
    return acts - (acts @ direction)[..., None] * direction


def keeps_only_the_direction(acts, direction):
    """Returns the component along the direction instead of removing it."""
    unit = direction / direction.norm()
    return (acts @ unit)[..., None] * unit


# --- orthogonalize_weights


def orthogonalizes_the_readers_too(name, weight, direction):
    """Also stops the readers (W_Q, W_in, W_U, ...) from reading the direction, along their d_model axis."""
    unit = direction / direction.norm()
    if name in ("W_E", "W_pos", "W_O", "b_O", "W_out", "b_out"):
        return weight - (weight @ unit)[..., None] * unit
    if weight.dim() >= 2 and weight.shape[-2] == unit.shape[0]:
        return weight - unit[:, None] * (unit @ weight)[..., None, :]
    return weight.clone()


def forgets_the_biases(name, weight, direction):
    """Orthogonalises the weight matrices but not b_O and b_out."""
    if name not in ("W_E", "W_pos", "W_O", "W_out"):
        return weight.clone()
    unit = direction / direction.norm()
    return weight - (weight @ unit)[..., None] * unit


def unnormalised_orthogonalization(name, weight, direction):
    """Uses the raw direction as if it were a unit vector."""
    if name not in ("W_E", "W_pos", "W_O", "b_O", "W_out", "b_out"):
        return weight.clone()
    return weight - (weight @ direction)[..., None] * direction


# --- first_principal_component


def uncentred_component(diffs):
    """Skips the centring, so the mean offset dominates."""
    component = torch.linalg.svd(diffs, full_matrices=False).Vh[0]
    return component if component @ diffs.mean(0) >= 0 else -component


def unsigned_component(diffs):
    """Keeps whatever sign the SVD returns."""
    return torch.linalg.svd(diffs - diffs.mean(0), full_matrices=False).Vh[0]


def column_of_vh(diffs):
    """Takes a column of Vh instead of its first row."""
    component = torch.linalg.svd(diffs - diffs.mean(0), full_matrices=False).Vh[:, 0]
    return component if component @ diffs.mean(0) >= 0 else -component


WRONG = {
    "contrastive_activations": [reads_resid_post, averages_into_the_padding, ignores_starts, starts_without_bos],
    "mean_difference_direction": [normalised_difference, negative_minus_positive, paired_differences],
    "separation_statistic": [biased_variances, averaged_deviations, absolute_separation],
    "train_probe": [probe_without_weight_decay, probe_with_sgd, probe_for_the_other_class],
    "mean_difference_classifier": [threshold_at_zero, threshold_at_the_data_mean],
    "steered_logits": [steers_the_layer_output, steers_the_last_position_only, leaves_the_steering_hook,
                       steers_with_the_unit_vector],
    "placebo_direction": [unit_placebo, uniform_placebo, unseeded_placebo],
    "kl_cost": [reversed_kl, kl_of_raw_logits, kl_summed_over_positions],
    "ablate_direction": [ablates_unnormalised_direction, keeps_only_the_direction],
    "orthogonalize_weights": [orthogonalizes_the_readers_too, forgets_the_biases, unnormalised_orthogonalization],
    "first_principal_component": [uncentred_component, unsigned_component, column_of_vh],
}
