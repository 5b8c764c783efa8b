"""Reference solutions for chapter 05: sparse autoencoders.

An SAE's parameters are a plain dict of tensors with SAELens's names and shapes:
``W_enc`` [d_in, d_sae], ``W_dec`` [d_sae, d_in] (row f is feature f's direction), ``b_enc``
[d_sae] and ``b_dec`` [d_in]. Activations ``x`` are [..., d_in]: any leading shape (tokens, or
batch and position). Each function below is pasted into the solved notebook, so it uses only
what the notebook imports and the exercises defined before it.

The notebook's import cell must provide (helper B):
    import torch
    from torch import Tensor
    from scipy.optimize import linear_sum_assignment
"""
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor


def encode_relu(x: Tensor, params: dict[str, Tensor]) -> Tensor:
    """The standard (ReLU) SAE's feature activations: ReLU((x - b_dec) @ W_enc + b_enc).

    x: [..., d_in]. Returns [..., d_sae], every entry >= 0. Subtracting b_dec first is SAELens's
    default (``apply_b_dec_to_input=True`` in StandardSAE.encode): the decoder bias is the SAE's
    estimate of the activations' centre, so the encoder reads each input relative to it.
    """
    return torch.relu((x - params["b_dec"]) @ params["W_enc"] + params["b_enc"])


def decode(features: Tensor, params: dict[str, Tensor]) -> Tensor:
    """The reconstruction from feature activations: features @ W_dec + b_dec.

    features: [..., d_sae]. Returns [..., d_in]: each active feature adds its activation times
    its decoder row, on top of the bias.
    """
    return features @ params["W_dec"] + params["b_dec"]


def sae_loss(x: Tensor, params: dict[str, Tensor], l1_coefficient: float) -> tuple[Tensor, Tensor]:
    """The two training losses of SAELens's standard SAE, (mse, l1), as scalar tensors.

    x: [..., d_in]. Encode with encode_relu, reconstruct with decode, then:
    - mse: the squared error summed over d_in, averaged over tokens (every leading position),
      as TrainingSAE.training_forward_pass computes it (sum over the last dimension, then mean);
    - l1: l1_coefficient times the L1 norm of the feature activations weighted by their decoder
      rows' norms, averaged over tokens: mean over tokens of sum_f |f_f| * ||W_dec[f]||
      (StandardTrainingSAE.calculate_aux_loss). The weighting stops the SAE from shrinking
      activations and growing decoder rows to dodge the penalty.
    Both must stay differentiable (training calls backward on mse + l1).
    """
    features = encode_relu(x, params)
    mse = (decode(features, params) - x).pow(2).sum(dim=-1).mean()
    weighted = features * params["W_dec"].norm(dim=1)
    l1 = l1_coefficient * weighted.abs().sum(dim=-1).mean()
    return mse, l1


def normalise_decoder(W_dec: Tensor) -> Tensor:
    """W_dec with each row scaled to unit norm.

    W_dec: [d_sae, d_in]. Returns a new tensor of the same shape whose rows have norm 1 (the
    input is not changed). Training applies it after every step, so a feature's size lives in its
    activation alone.
    """
    return W_dec / W_dec.norm(dim=-1, keepdim=True)


def mean_max_cosine(learned: Tensor, true: Tensor) -> float:
    """How well a dictionary recovers known directions: the best cosine per true direction, averaged.

    learned: [n_learned, d] (e.g. an SAE's W_dec rows); true: [n_true, d]. Neither need be
    unit-norm. For each true direction take the largest *signed* cosine similarity over all
    learned directions, then average over the true directions. Signed, not absolute: a ReLU
    feature only fires in its own direction, so a learned row pointing the opposite way has
    not recovered the true one. Returns a float in [-1, 1]; 1 means every true direction appears.
    """
    cos = torch.nn.functional.normalize(true, dim=-1) @ torch.nn.functional.normalize(learned, dim=-1).T
    return float(cos.max(dim=1).values.mean())


def matched_recovery(learned: Tensor, true: Tensor) -> float:
    """Recovery with a one-to-one matching: each learned direction may stand for one true one only.

    learned: [n_learned, d]; true: [n_true, d]. Build the [n_true, n_learned] matrix of signed
    cosine similarities, find the matching that maximises their sum with
    scipy.optimize.linear_sum_assignment(..., maximize=True) (the Hungarian algorithm), and
    return the sum of the matched cosines divided by n_true. With fewer learned than true
    directions, the unmatched true directions count as 0. Unlike mean_max_cosine, one learned
    row cannot take credit for several true directions.
    """
    cos = torch.nn.functional.normalize(true, dim=-1) @ torch.nn.functional.normalize(learned, dim=-1).T
    rows, cols = linear_sum_assignment(cos.detach().double().numpy(), maximize=True)
    return float(cos[rows, cols].sum()) / true.shape[0]


def encode_topk(x: Tensor, params: dict[str, Tensor], k: int) -> Tensor:
    """The TopK SAE's feature activations: keep each token's k largest pre-activations.

    x: [..., d_in]. Pre-activations are (x - b_dec) @ W_enc + b_enc, as in encode_relu. For each
    token keep the k largest pre-activations, ReLU them (a kept negative value becomes 0), and set
    every other feature to 0: SAELens's TopK activation (torch.topk on the last dimension, then
    relu, scattered into zeros). Returns [..., d_sae] with at most k non-zeros per token.
    """
    pre = (x - params["b_dec"]) @ params["W_enc"] + params["b_enc"]
    top = pre.topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, top.indices, top.values.relu())


def encode_batch_topk(x: Tensor, params: dict[str, Tensor], k: int) -> Tensor:
    """The BatchTopK SAE's activations (Bussmann et al. 2024): k per token on average over the batch.

    x: [..., d_in]; call n the number of tokens (the product of the leading dimensions). ReLU the
    pre-activations (x - b_dec) @ W_enc + b_enc, then keep the int(k * n) largest values over the
    whole batch at once and zero the rest, as SAELens's BatchTopK does. A busy token may use more
    than k features and a quiet one fewer. Returns [..., d_sae].
    """
    acts = torch.relu((x - params["b_dec"]) @ params["W_enc"] + params["b_enc"])
    flat = acts.flatten()
    top = flat.topk(int(k * acts.shape[:-1].numel()))
    return torch.zeros_like(flat).scatter(0, top.indices, top.values).reshape(acts.shape)


def normalisation_factor(acts: Tensor) -> float:
    """The constant that rescales activations to an average norm of sqrt(d_in).

    acts: [..., d_in]. Returns sqrt(d_in) / (mean over tokens of ||acts||), SAELens's
    ``normalize_activations="expected_average_only_in"`` (ActivationScaler.estimate_scaling_factor).
    Multiplying by it makes one L1 coefficient mean the same thing on any model and layer.
    """
    return acts.shape[-1] ** 0.5 / float(acts.norm(dim=-1).mean())


def explained_variance(x: Tensor, x_hat: Tensor) -> float:
    """The fraction of the activations' variance the reconstruction explains.

    x, x_hat: [..., d_in]; every leading position is one sample. Returns
    1 - mean_tokens ||x - x_hat||^2 / mean_tokens ||x - mean(x)||^2, where mean(x) is the mean
    activation vector over all tokens. The variance is around the mean, as SAELens computes it
    since 6.45.1; measured around zero (dividing by mean ||x||^2) a large constant offset in the
    activations would count as "explained" for free. 1 - explained_variance is the FVU.
    """
    x, x_hat = x.reshape(-1, x.shape[-1]).double(), x_hat.reshape(-1, x.shape[-1]).double()
    residual = (x - x_hat).pow(2).sum(dim=-1).mean()
    variance = (x - x.mean(dim=0)).pow(2).sum(dim=-1).mean()
    return float(1 - residual / variance)


def ce_loss_recovered(clean_loss: float, sae_loss: float, ablated_loss: float) -> float:
    """How much of the loss an ablation costs the SAE wins back: (ablated - sae) / (ablated - clean).

    1 when splicing in the SAE leaves the model's cross-entropy loss at its clean value, 0 when it
    is as bad as the ablation (SAELens's ce_loss_score). The same formula with KL divergences
    (clean = 0) gives SAELens's KL score. Raises ValueError when ablated_loss equals clean_loss.
    """
    if ablated_loss == clean_loss:
        raise ValueError("ablated_loss equals clean_loss: the ablation costs nothing, so nothing can be recovered")
    return (ablated_loss - sae_loss) / (ablated_loss - clean_loss)


def kl_divergence(clean_logits: Tensor, other_logits: Tensor) -> float:
    """KL(clean || other) of the next-token distributions, averaged over tokens.

    Both [..., d_vocab]. At each position p = softmax(clean), q = softmax(other) and
    KL = sum_v p_v (log p_v - log q_v) (use log_softmax for stability); return the mean over all
    positions, as SAELens's evals do for kl_div_with_sae and kl_div_with_ablation.
    """
    log_p, log_q = clean_logits.log_softmax(dim=-1), other_logits.log_softmax(dim=-1)
    return float((log_p.exp() * (log_p - log_q)).sum(dim=-1).mean())


def feature_density(features: Tensor) -> Tensor:
    """How often each feature fires: the fraction of tokens where it is non-zero.

    features: [..., d_sae]. Returns float [d_sae]; a dead feature has density 0. SAELens counts
    an activation as firing when it is != 0.
    """
    return (features != 0).reshape(-1, features.shape[-1]).float().mean(dim=0)


def top_activating_contexts(feature_acts: Tensor, k: int) -> Tensor:
    """Where one feature fires most strongly: the k largest activations' (sequence, position).

    feature_acts: [n_seq, seq_len], one feature's activation at every token. Returns a long
    tensor [k, 2] whose row i is (sequence index, position) of the i-th largest activation,
    in descending order of activation (ties in any order). Raises ValueError when k exceeds the
    number of tokens.
    """
    n_seq, seq_len = feature_acts.shape
    if k > n_seq * seq_len:
        raise ValueError(f"k={k} but only {n_seq * seq_len} tokens")
    flat = feature_acts.flatten().topk(k).indices
    return torch.stack([flat // seq_len, flat % seq_len], dim=1)


def feature_logit_effects(params: dict[str, Tensor], W_U: Tensor, feature: int) -> Tensor:
    """A feature's direct effect on the logits: its decoder row through the unembedding.

    W_U: [d_in, d_vocab] (the SAE reads the residual stream, so d_in = d_model). Returns
    W_dec[feature] @ W_U, [d_vocab]: which next tokens the feature pushes up (positive) or down,
    ignoring every layer after the SAE's and the final layer norm.
    """
    return params["W_dec"][feature] @ W_U


def monosemanticity(categories: list[str]) -> tuple[str, float]:
    """The most common category among a unit's top activations, and its share.

    categories: one category per top-activating token (e.g. "country", "year"). Returns
    (category, count / len(categories)); ties go to the category that appears first in the list.
    Raises ValueError on an empty list.
    """
    if not categories:
        raise ValueError("categories is empty: a unit needs at least one top activation")
    counts: dict[str, int] = {}
    for category in categories:
        counts[category] = counts.get(category, 0) + 1
    best = max(counts, key=counts.__getitem__)
    return best, counts[best] / len(categories)


def clamp_feature(resid: Tensor, params: dict[str, Tensor], feature: int, value: float,
                  include_error: bool) -> Tensor:
    """The residual stream with one SAE feature pinned to ``value``.

    resid: [..., d_in]. Encode with encode_relu, set that feature's activation to ``value`` at
    every position, and decode. With include_error, add back the SAE's error term
    resid - decode(encode_relu(resid)) (the unclamped reconstruction's miss), so the only change
    to resid is the clamped feature's; without it, the result is the SAE's reconstruction.
    Returns [..., d_in]; resid is not changed.
    """
    features = encode_relu(resid, params)
    clamped = features.clone()
    clamped[..., feature] = value
    out = decode(clamped, params)
    if include_error:
        out = out + (resid - decode(features, params))
    return out
