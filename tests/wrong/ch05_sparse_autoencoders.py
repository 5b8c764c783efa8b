"""Realistic wrong versions of chapter 05's exercises."""
import torch
from scipy.optimize import linear_sum_assignment

from solutions.ch05_sparse_autoencoders import decode as _decode, encode_relu as _encode


def _pre(x, params):
    return (x - params["b_dec"]) @ params["W_enc"] + params["b_enc"]


# --- encode_relu


def encode_without_b_dec(x, params):
    """Forgets to subtract b_dec from the input."""
    return torch.relu(x @ params["W_enc"] + params["b_enc"])


def encode_without_relu(x, params):
    """Returns the pre-activations."""
    return _pre(x, params)


def encode_with_the_decoder(x, params):
    """Reads with the transposed decoder instead of W_enc (tied weights)."""
    return torch.relu((x - params["b_dec"]) @ params["W_dec"].T + params["b_enc"])


# --- decode


def decode_without_bias(features, params):
    """Forgets b_dec."""
    return features @ params["W_dec"]


def decode_with_the_encoder(features, params):
    """Decodes through W_enc transposed."""
    return features @ params["W_enc"].T + params["b_dec"]


# --- sae_loss


def loss_with_unweighted_l1(x, params, l1_coefficient):
    """Plain L1 of the activations, not weighted by the decoder norms."""
    features = _encode(x, params)
    mse = (_decode(features, params) - x).pow(2).sum(-1).mean()
    return mse, l1_coefficient * features.sum(-1).mean()


def loss_with_mean_squared_error(x, params, l1_coefficient):
    """Averages the squared error over every element (F.mse_loss's default) instead of summing over d_in."""
    features = _encode(x, params)
    mse = torch.nn.functional.mse_loss(_decode(features, params), x)
    return mse, l1_coefficient * (features * params["W_dec"].norm(dim=1)).sum(-1).mean()


def loss_without_the_coefficient(x, params, l1_coefficient):
    """Returns the weighted L1 before multiplying by the coefficient."""
    features = _encode(x, params)
    mse = (_decode(features, params) - x).pow(2).sum(-1).mean()
    return mse, (features * params["W_dec"].norm(dim=1)).sum(-1).mean()


# --- normalise_decoder


def normalises_columns(W_dec):
    """Normalises each column (dim=0) instead of each row."""
    return W_dec / W_dec.norm(dim=0, keepdim=True)


def normalises_in_place(W_dec):
    """Divides the argument in place."""
    W_dec /= W_dec.norm(dim=1, keepdim=True)
    return W_dec


# --- mean_max_cosine


def best_true_per_learned(learned, true):
    """Maximises over the true directions for each learned one, averaging over the learned."""
    cos = torch.nn.functional.normalize(true, dim=-1) @ torch.nn.functional.normalize(learned, dim=-1).T
    return float(cos.max(dim=0).values.mean())


def absolute_cosine(learned, true):
    """Takes |cos|, so a learned direction pointing the opposite way counts as recovered."""
    cos = torch.nn.functional.normalize(true, dim=-1) @ torch.nn.functional.normalize(learned, dim=-1).T
    return float(cos.abs().max(dim=1).values.mean())


def unnormalised_dot_products(learned, true):
    """Uses raw dot products, so long learned rows score high."""
    return float((true @ learned.T).max(dim=1).values.mean())


# --- matched_recovery


def greedy_matching(learned, true):
    """Takes each true direction's best learned one, reusing learned directions."""
    cos = torch.nn.functional.normalize(true, dim=-1) @ torch.nn.functional.normalize(learned, dim=-1).T
    return float(cos.max(dim=1).values.mean())


def minimising_assignment(learned, true):
    """Calls linear_sum_assignment on the cosines without maximize=True: the worst matching."""
    cos = torch.nn.functional.normalize(true, dim=-1) @ torch.nn.functional.normalize(learned, dim=-1).T
    rows, cols = linear_sum_assignment(cos.double().numpy())
    return float(cos[rows, cols].sum()) / true.shape[0]


def matching_unnormalised(learned, true):
    """Matches raw dot products and averages them."""
    dots = true @ learned.T
    rows, cols = linear_sum_assignment(dots.double().numpy(), maximize=True)
    return float(dots[rows, cols].mean())


# --- encode_topk


def topk_without_relu(x, params, k):
    """Keeps negative pre-activations among the top k."""
    pre = _pre(x, params)
    top = pre.topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, top.indices, top.values)


def topk_over_the_batch(x, params, k):
    """Keeps k values over the whole batch instead of k per token."""
    acts = _pre(x, params).relu()
    top = acts.flatten().topk(k)
    return torch.zeros_like(acts.flatten()).scatter(0, top.indices, top.values).reshape(acts.shape)


def topk_by_magnitude(x, params, k):
    """Ranks pre-activations by absolute value."""
    pre = _pre(x, params)
    top = pre.abs().topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, top.indices, pre.gather(-1, top.indices).relu())


# --- encode_batch_topk


def batch_topk_per_token(x, params, k):
    """Keeps k per token: plain TopK, not BatchTopK."""
    pre = _pre(x, params)
    top = pre.topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, top.indices, top.values.relu())


def batch_topk_k_in_total(x, params, k):
    """Keeps k values in the whole batch, not k times the number of tokens."""
    return topk_over_the_batch(x, params, k)


# --- normalisation_factor


def root_mean_square_norm(acts):
    """Divides by the root of the mean squared norm instead of the mean norm."""
    return acts.shape[-1] ** 0.5 / float(acts.pow(2).sum(-1).mean().sqrt())


def factor_to_unit_norm(acts):
    """Scales to a mean norm of 1, not sqrt(d_in)."""
    return 1 / float(acts.norm(dim=-1).mean())


def inverted_factor(acts):
    """Returns mean norm / sqrt(d_in), the inverse."""
    return float(acts.norm(dim=-1).mean()) / acts.shape[-1] ** 0.5


# --- explained_variance


def variance_around_zero(x, x_hat):
    """The pre-6.45.1 bug: divides by the mean squared norm, the variance around zero."""
    return float(1 - (x - x_hat).pow(2).sum(-1).mean() / x.pow(2).sum(-1).mean())


def mean_of_per_token_ratios(x, x_hat):
    """Averages per-token ratios of residual to variance instead of pooling them."""
    variance = (x - x.mean(0)).pow(2).sum(-1)
    return float((1 - (x - x_hat).pow(2).sum(-1) / variance).mean())


def fraction_unexplained(x, x_hat):
    """Returns the FVU, 1 - explained variance."""
    return float((x - x_hat).pow(2).sum(-1).mean() / (x - x.mean(0)).pow(2).sum(-1).mean())


# --- ce_loss_recovered


def loss_added_fraction(clean_loss, sae_loss, ablated_loss):
    """Returns the fraction of the ablation's damage that remains, 1 - the score."""
    return (sae_loss - clean_loss) / (ablated_loss - clean_loss)


def ratio_to_the_ablation(clean_loss, sae_loss, ablated_loss):
    """Compares with the ablated loss alone, forgetting the clean baseline."""
    return 1 - sae_loss / ablated_loss


# --- kl_divergence


def reversed_kl_divergence(clean_logits, other_logits):
    """KL(other || clean)."""
    log_p, log_q = clean_logits.log_softmax(-1), other_logits.log_softmax(-1)
    return float((log_q.exp() * (log_q - log_p)).sum(-1).mean())


def kl_summed_over_tokens(clean_logits, other_logits):
    """Sums over tokens instead of averaging."""
    log_p, log_q = clean_logits.log_softmax(-1), other_logits.log_softmax(-1)
    return float((log_p.exp() * (log_p - log_q)).sum())


def kl_of_raw_logits(clean_logits, other_logits):
    """Treats logits as log-probabilities."""
    return float((clean_logits.softmax(-1) * (clean_logits - other_logits)).sum(-1).mean())


# --- feature_density


def firing_counts(features):
    """Counts tokens instead of taking the fraction."""
    return (features != 0).reshape(-1, features.shape[-1]).float().sum(0)


def mean_activation(features):
    """The mean activation, not how often the feature fires."""
    return features.reshape(-1, features.shape[-1]).mean(0)


def density_over_the_first_dimension(features):
    """Averages over the first dimension only."""
    return (features != 0).float().mean(0)


# --- top_activating_contexts


def flat_indices(feature_acts, k):
    """Returns flat token indices, not (sequence, position) rows."""
    return feature_acts.flatten().topk(k).indices


def one_per_sequence(feature_acts, k):
    """Takes each sequence's maximum, so a sequence appears at most once."""
    values, positions = feature_acts.max(dim=1)
    seqs = values.topk(k).indices
    return torch.stack([seqs, positions[seqs]], dim=1)


def position_then_sequence(feature_acts, k):
    """Swaps the columns: (position, sequence)."""
    flat = feature_acts.flatten().topk(k).indices
    return torch.stack([flat % feature_acts.shape[1], flat // feature_acts.shape[1]], dim=1)


def smallest_first(feature_acts, k):
    """Sorts ascending."""
    flat = feature_acts.flatten().topk(k).indices.flip(0)
    return torch.stack([flat // feature_acts.shape[1], flat % feature_acts.shape[1]], dim=1)


# --- feature_logit_effects


def effects_through_the_encoder(params, W_U, feature):
    """Reads the encoder column (what the feature detects) instead of the decoder row."""
    return params["W_enc"][:, feature] @ W_U


def effects_with_b_dec(params, W_U, feature):
    """Adds the decoder bias, which every feature shares."""
    return (params["W_dec"][feature] + params["b_dec"]) @ W_U


# --- monosemanticity


def share_of_distinct_categories(categories):
    """Divides by the number of distinct categories, not of labels."""
    best = max(set(categories), key=categories.count)
    return best, categories.count(best) / len(set(categories))


def ignores_other(categories):
    """Leaves "other" out of the count, inflating the share."""
    kept = [c for c in categories if c != "other"]
    best = max(kept, key=kept.count)
    return best, kept.count(best) / len(kept)


def returns_the_count(categories):
    """Returns the count, not the share."""
    best = max(categories, key=categories.count)
    return best, float(categories.count(best))


# --- clamp_feature


def error_after_clamping(resid, params, feature, value, include_error):
    """Takes the error of the clamped reconstruction, which undoes the clamp."""
    features = _encode(resid, params)
    features[..., feature] = value
    out = _decode(features, params)
    return out + (resid - out) if include_error else out


def adds_to_the_feature(resid, params, feature, value, include_error):
    """Adds the value to the feature's activation instead of setting it."""
    features = _encode(resid, params)
    clamped = features.clone()
    clamped[..., feature] += value
    out = _decode(clamped, params)
    return out + (resid - _decode(features, params)) if include_error else out


def ignores_include_error(resid, params, feature, value, include_error):
    """Always returns the bare reconstruction."""
    features = _encode(resid, params)
    features[..., feature] = value
    return _decode(features, params)


def clamps_the_last_position_only(resid, params, feature, value, include_error):
    """Pins the feature at the last position alone."""
    features = _encode(resid, params)
    clamped = features.clone()
    clamped[..., -1, feature] = value
    out = _decode(clamped, params)
    return out + (resid - _decode(features, params)) if include_error else out


WRONG = {
    "encode_relu": [encode_without_b_dec, encode_without_relu, encode_with_the_decoder],
    "decode": [decode_without_bias, decode_with_the_encoder],
    "sae_loss": [loss_with_unweighted_l1, loss_with_mean_squared_error, loss_without_the_coefficient],
    "normalise_decoder": [normalises_columns, normalises_in_place],
    "mean_max_cosine": [best_true_per_learned, absolute_cosine, unnormalised_dot_products],
    "matched_recovery": [greedy_matching, minimising_assignment, matching_unnormalised],
    "encode_topk": [topk_without_relu, topk_over_the_batch, topk_by_magnitude],
    "encode_batch_topk": [batch_topk_per_token, batch_topk_k_in_total],
    "normalisation_factor": [root_mean_square_norm, factor_to_unit_norm, inverted_factor],
    "explained_variance": [variance_around_zero, mean_of_per_token_ratios, fraction_unexplained],
    "ce_loss_recovered": [loss_added_fraction, ratio_to_the_ablation],
    "kl_divergence": [reversed_kl_divergence, kl_summed_over_tokens, kl_of_raw_logits],
    "feature_density": [firing_counts, mean_activation, density_over_the_first_dimension],
    "top_activating_contexts": [flat_indices, one_per_sequence, position_then_sequence, smallest_first],
    "feature_logit_effects": [effects_through_the_encoder, effects_with_b_dec],
    "monosemanticity": [share_of_distinct_categories, ignores_other, returns_the_count],
    "clamp_feature": [error_after_clamping, adds_to_the_feature, ignores_include_error, clamps_the_last_position_only],
}
