"""Realistic wrong versions of chapter 02's exercises."""
import torch

from solutions.ch02_induction_heads import composition_score as _composition_score
from solutions.ch02_induction_heads import token_losses as _token_losses


# --- repeated_random_tokens


def tokens_without_bos(candidates, half_len, batch, bos, seed):
    """Forgets the BOS token."""
    g = torch.Generator().manual_seed(seed)
    rows = [candidates[torch.randperm(len(candidates), generator=g)[:half_len]] for _ in range(batch)]
    return torch.stack([torch.cat([r, r]) for r in rows]).long()


def two_independent_halves(candidates, half_len, batch, bos, seed):
    """Draws the second half afresh instead of repeating the first."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(batch):
        a = candidates[torch.randperm(len(candidates), generator=g)[:half_len]]
        b = candidates[torch.randperm(len(candidates), generator=g)[:half_len]]
        rows.append(torch.cat([torch.tensor([bos]), a, b]))
    return torch.stack(rows).long()


def draws_with_replacement(candidates, half_len, batch, bos, seed):
    """Uses randint, so a token can appear twice inside one half."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(batch):
        half = candidates[torch.randint(0, len(candidates), (half_len,), generator=g)]
        rows.append(torch.cat([torch.tensor([bos]), half, half]))
    return torch.stack(rows).long()


def positions_not_candidates(candidates, half_len, batch, bos, seed):
    """Returns the random positions instead of the candidates at those positions."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(batch):
        half = torch.randperm(len(candidates), generator=g)[:half_len]
        rows.append(torch.cat([torch.tensor([bos]), half, half]))
    return torch.stack(rows).long()


def ignores_the_seed(candidates, half_len, batch, bos, seed):
    """Uses the global random state, so the seed does nothing."""
    rows = []
    for _ in range(batch):
        half = candidates[torch.randperm(len(candidates))[:half_len]]
        rows.append(torch.cat([torch.tensor([bos]), half, half]))
    return torch.stack(rows).long()


# --- token_losses


def loss_without_shift(logits, tokens):
    """Scores each position's prediction against its own token."""
    return -logits.log_softmax(-1).gather(-1, tokens[..., None])[..., 0][:, :-1]


def probability_not_log(logits, tokens):
    """Returns minus the probability instead of minus the log probability."""
    return -logits[:, :-1].softmax(-1).gather(-1, tokens[:, 1:, None])[..., 0]


def mean_loss(logits, tokens):
    """Returns the mean instead of one loss per token."""
    return _token_losses(logits, tokens).mean()


# --- previous_token_score


def previous_including_first_query(pattern):
    """Averages over all n queries, counting query 0 (which has no previous token) as 0."""
    n = pattern.shape[-1]
    q = torch.arange(1, n)
    return pattern[:, :, q, q - 1].sum(dim=(0, 2)) / (pattern.shape[0] * n)


def current_token_instead(pattern):
    """Looks at the main diagonal (the current token)."""
    return pattern.diagonal(dim1=-2, dim2=-1).mean(dim=(0, 2))


def previous_mean_over_heads(pattern):
    """Averages over heads instead of over the batch."""
    n = pattern.shape[-1]
    q = torch.arange(1, n)
    return pattern[:, :, q, q - 1].mean(dim=(1, 2))


# --- induction_score


def _earlier_copies(tokens):
    n = tokens.shape[-1]
    return (tokens[:, :, None] == tokens[:, None, :]) & torch.ones(n, n, dtype=torch.bool).tril(-1)


def duplicate_token_score(pattern, tokens):
    """Attention to the earlier copy itself, not to the token after it."""
    targets = _earlier_copies(tokens)
    has = targets.any(-1)
    return ((pattern * targets[:, None]).sum(-1) * has[:, None]).sum((0, 2)) / has.sum()


def induction_over_all_queries(pattern, tokens):
    """Divides by every query, not only those with an earlier copy (TransformerLens's raw 'mul' score)."""
    copies = _earlier_copies(tokens)
    targets = torch.zeros_like(copies)
    targets[:, :, 1:] = copies[:, :, :-1]
    return (pattern * targets[:, None]).sum((-1, -2)).sum(0) / (tokens.shape[0] * tokens.shape[1])


def induction_fixed_offset(pattern, tokens):
    """Assumes BOS + n tokens repeated once, and reads the diagonal at offset -(n - 1)."""
    n = (tokens.shape[1] - 1) // 2
    q = torch.arange(n + 1, 2 * n + 1)
    return pattern[:, :, q, q - n + 1].mean(dim=(0, 2))


def induction_shift_wrong_way(pattern, tokens):
    """Takes the token before the earlier copy (j - 1) instead of after it."""
    copies = _earlier_copies(tokens)
    targets = torch.zeros_like(copies)
    targets[:, :, :-1] = copies[:, :, 1:]
    has = targets.any(-1)
    return ((pattern * targets[:, None]).sum(-1) * has[:, None]).sum((0, 2)) / has.sum().clamp_min(1)


def induction_divides_by_at_least_two(pattern, tokens):
    """Guards the division with clamp_min(2) instead of clamp_min(1), so one query with a target is halved."""
    copies = _earlier_copies(tokens)
    targets = torch.zeros_like(copies)
    targets[:, :, 1:] = copies[:, :, :-1]
    has = targets.any(-1)
    return ((pattern * targets[:, None]).sum(-1) * has[:, None]).sum((0, 2)) / has.sum().clamp_min(2)


# --- head_logit_attribution


def dla_without_centring(z, W_O, final_scale, W_U, tokens):
    """Forgets that the final LayerNorm subtracts the mean."""
    out = torch.einsum("bphd,hdm->bphm", z, W_O) / final_scale[:, :, None]
    return torch.einsum("bphm,mbp->bph", out[:, :-1], W_U[:, tokens[:, 1:]])


def dla_without_scale(z, W_O, final_scale, W_U, tokens):
    """Forgets to divide by the final LayerNorm's scale."""
    out = torch.einsum("bphd,hdm->bphm", z, W_O)
    out = out - out.mean(-1, keepdim=True)
    return torch.einsum("bphm,mbp->bph", out[:, :-1], W_U[:, tokens[:, 1:]])


def dla_current_token(z, W_O, final_scale, W_U, tokens):
    """Attributes to the logit of the current token rather than the next one."""
    out = torch.einsum("bphd,hdm->bphm", z, W_O)
    out = (out - out.mean(-1, keepdim=True)) / final_scale[:, :, None]
    return torch.einsum("bphm,mbp->bph", out[:, :-1], W_U[:, tokens[:, :-1]])


# --- repeat_loss_with_ablation


def _run(model, tokens, hooks):
    with torch.no_grad():
        logits = model.run_with_hooks(tokens, fwd_hooks=hooks)
    return _token_losses(logits, tokens)


def ablates_whole_layer(model, tokens, heads):
    """Zeroes every head of each listed layer."""
    def zero(z, hook):
        return torch.zeros_like(z)
    return _run(model, tokens, [(f"blocks.{layer}.attn.hook_z", zero) for layer, _ in heads])


def _zero_head(h):
    """A hook that zeroes head ``h`` of an activation shaped [batch, pos, head, ...]."""
    def zero(activation, hook):
        activation = activation.clone()
        activation[:, :, h] = 0
        return activation
    return zero


def ablates_query_instead(model, tokens, heads):
    """Zeroes the head's queries (its pattern becomes uniform) instead of its output."""
    return _run(model, tokens, [(f"blocks.{layer}.attn.hook_q", _zero_head(h)) for layer, h in heads])


def leaves_hooks_on(model, tokens, heads):
    """Adds hooks with model.add_hook and never removes them."""
    for layer, h in heads:
        model.add_hook(f"blocks.{layer}.attn.hook_z", _zero_head(h))
    with torch.no_grad():
        logits = model(tokens)
    return _token_losses(logits, tokens)


def returns_mean_loss(model, tokens, heads):
    """Returns one mean loss (return_type="loss") instead of a loss per token."""
    with torch.no_grad():
        return model.run_with_hooks(tokens, return_type="loss",
                                    fwd_hooks=[(f"blocks.{layer}.attn.hook_z", _zero_head(h)) for layer, h in heads])


def ablates_last_head_of_each_layer(model, tokens, heads):
    """Groups heads by layer in a dict {layer: head}, so only the last listed head of a layer is zeroed."""
    by_layer = {int(layer): int(h) for layer, h in heads}

    return _run(model, tokens, [(f"blocks.{layer}.attn.hook_z", _zero_head(h)) for layer, h in by_layer.items()])


# --- composition_score


def spectral_norm_score(W_A, W_B):
    """Uses the spectral norm instead of the Frobenius norm."""
    norm = lambda M: torch.linalg.matrix_norm(M, ord=2)
    return norm(W_A @ W_B) / (norm(W_A) * norm(W_B))


def unnormalised_score(W_A, W_B):
    """Forgets to divide by the norms of the factors."""
    return torch.linalg.matrix_norm(W_A @ W_B)


# --- k_composition_scores


def q_composition_instead(W_V0, W_O0, W_Q1, W_K1):
    """Forgets the transpose of W_QK, which gives Q-composition."""
    return torch.stack([torch.stack([_composition_score(W_V0[a] @ W_O0[a], W_Q1[b] @ W_K1[b].T)
                                     for b in range(W_Q1.shape[0])]) for a in range(W_V0.shape[0])])


def k_composition_transposed(W_V0, W_O0, W_Q1, W_K1):
    """Returns [late head, early head]."""
    return torch.stack([torch.stack([_composition_score(W_V0[a] @ W_O0[a], (W_Q1[b] @ W_K1[b].T).T)
                                     for a in range(W_V0.shape[0])]) for b in range(W_Q1.shape[0])])


WRONG = {
    "repeated_random_tokens": [tokens_without_bos, two_independent_halves, draws_with_replacement,
                               positions_not_candidates, ignores_the_seed],
    "token_losses": [loss_without_shift, probability_not_log, mean_loss],
    "previous_token_score": [previous_including_first_query, current_token_instead, previous_mean_over_heads],
    "induction_score": [duplicate_token_score, induction_over_all_queries, induction_fixed_offset,
                        induction_shift_wrong_way, induction_divides_by_at_least_two],
    "head_logit_attribution": [dla_without_centring, dla_without_scale, dla_current_token],
    "repeat_loss_with_ablation": [ablates_whole_layer, ablates_query_instead, leaves_hooks_on, returns_mean_loss,
                                  ablates_last_head_of_each_layer],
    "composition_score": [spectral_norm_score, unnormalised_score],
    "k_composition_scores": [q_composition_instead, k_composition_transposed],
}
