"""Realistic wrong versions of chapter 01's exercises: each is a mistake learners make."""
import math

import torch


# attention_pattern ---------------------------------------------------------------------------

def pattern_from_scores(model, tokens, layer, head):
    """Reads the scores before the softmax (`hook_attn_scores`)."""
    _, cache = model.run_with_cache(tokens)
    return cache[f"blocks.{layer}.attn.hook_attn_scores"][:, head]


def pattern_wrong_axis(model, tokens, layer, head):
    """Indexes the query axis instead of the head axis."""
    _, cache = model.run_with_cache(tokens)
    return cache[f"blocks.{layer}.attn.hook_pattern"][:, :, head]


def pattern_transposed(model, tokens, layer, head):
    """Puts keys on the rows."""
    _, cache = model.run_with_cache(tokens)
    return cache[f"blocks.{layer}.attn.hook_pattern"][:, head].transpose(-1, -2)


def pattern_always_layer_zero(model, tokens, layer, head):
    """Hard-codes layer 0 (copied from an example)."""
    _, cache = model.run_with_cache(tokens)
    return cache["blocks.0.attn.hook_pattern"][:, head]


# residual_norms ------------------------------------------------------------------------------

def norms_without_final(model, tokens):
    """Forgets the residual stream after the last layer."""
    norms = []
    with model.hooks(fwd_hooks=[(f"blocks.{l}.hook_resid_pre", lambda a, hook: norms.append(a.norm(dim=-1)))
                                for l in range(model.cfg.n_layers)]):
        model(tokens)
    return torch.stack(norms)


def norms_with_add_hook(model, tokens):
    """Right values, but adds hooks with `model.add_hook` and never removes them."""
    n = model.cfg.n_layers
    names = [f"blocks.{l}.hook_resid_pre" for l in range(n)] + [f"blocks.{n - 1}.hook_resid_post"]
    norms = {}
    for i, name in enumerate(names):
        model.add_hook(name, lambda a, hook, i=i: norms.__setitem__(i, a.norm(dim=-1)))
    model(tokens)
    return torch.stack([norms[i] for i in range(len(names))])


def norms_squared(model, tokens):
    """Squared norms (sum of squares, no square root)."""
    n = model.cfg.n_layers
    names = [f"blocks.{l}.hook_resid_pre" for l in range(n)] + [f"blocks.{n - 1}.hook_resid_post"]
    norms = [None] * len(names)
    with model.hooks(fwd_hooks=[(name, lambda a, hook, i=i: norms.__setitem__(i, a.pow(2).sum(-1)))
                                for i, name in enumerate(names)]):
        model(tokens)
    return torch.stack(norms)


# decompose_residual --------------------------------------------------------------------------

def decompose_without_positions(model, cache):
    """Leaves out the positional embedding."""
    pieces = [cache["hook_embed"]]
    for l in range(model.cfg.n_layers):
        pieces += [cache[f"blocks.{l}.hook_attn_out"], cache[f"blocks.{l}.hook_mlp_out"]]
    return torch.stack(pieces)


def decompose_with_resid_mid(model, cache):
    """Uses the residual stream after attention (cumulative) instead of the attention output."""
    pieces = [cache["hook_embed"], cache["hook_pos_embed"]]
    for l in range(model.cfg.n_layers):
        pieces += [cache[f"blocks.{l}.hook_resid_mid"], cache[f"blocks.{l}.hook_mlp_out"]]
    return torch.stack(pieces)


def decompose_attention_first(model, cache):
    """Right pieces, wrong order: all attention outputs, then all MLP outputs."""
    n = model.cfg.n_layers
    pieces = [cache["hook_embed"], cache["hook_pos_embed"]]
    pieces += [cache[f"blocks.{l}.hook_attn_out"] for l in range(n)]
    pieces += [cache[f"blocks.{l}.hook_mlp_out"] for l in range(n)]
    return torch.stack(pieces)


# head_results --------------------------------------------------------------------------------

def results_with_bias_per_head(model, cache, layer):
    """Adds b_O to every head."""
    z = cache[f"blocks.{layer}.attn.hook_z"]
    return torch.einsum("bphd,hdm->bphm", z, model.W_O[layer]) + model.b_O[layer]


def results_first_layer_weights(model, cache, layer):
    """Uses W_O of layer 0 whatever the layer."""
    z = cache[f"blocks.{layer}.attn.hook_z"]
    return torch.einsum("bphd,hdm->bphm", z, model.W_O[0])


def results_wrong_layer_z(model, cache, layer):
    """Reads z of the last layer whatever the layer."""
    z = cache[f"blocks.{model.cfg.n_layers - 1}.attn.hook_z"]
    return torch.einsum("bphd,hdm->bphm", z, model.W_O[layer])


# detectors -----------------------------------------------------------------------------------

def _stack(model, cache, score):
    return torch.stack([score(cache[f"blocks.{l}.attn.hook_pattern"]) for l in range(model.cfg.n_layers)])


def previous_including_position_zero(model, cache):
    """Counts query 0 too (it has no previous token), pulling every score towards 0."""
    def score(p):
        n = p.shape[-1]
        return p.diagonal(offset=-1, dim1=-2, dim2=-1).sum(-1).mean(0) / n
    return _stack(model, cache, score)


def previous_wrong_diagonal(model, cache):
    """Takes the diagonal above the main one (the next token, always masked)."""
    return _stack(model, cache, lambda p: p.diagonal(offset=1, dim1=-2, dim2=-1).mean(dim=(0, -1)))


def previous_first_sequence_only(model, cache):
    """Uses only the first sequence of the batch."""
    return _stack(model, cache, lambda p: p[0].diagonal(offset=-1, dim1=-2, dim2=-1).mean(-1))


def current_including_position_zero(model, cache):
    """Includes query 0, where attention to itself is forced."""
    return _stack(model, cache, lambda p: p.diagonal(dim1=-2, dim2=-1).mean(dim=(0, -1)))


def current_heads_and_layers_swapped(model, cache):
    """Returns [n_heads, n_layers]."""
    return _stack(model, cache, lambda p: p.diagonal(dim1=-2, dim2=-1)[..., 1:].mean(dim=(0, -1))).T.contiguous()


def first_last_key(model, cache):
    """Takes the last key column instead of the first."""
    return _stack(model, cache, lambda p: p[:, :, 1:, -1].mean(dim=(0, -1)))


def first_including_position_zero(model, cache):
    """Includes query 0, which can only attend to key 0."""
    return _stack(model, cache, lambda p: p[:, :, :, 0].mean(dim=(0, -1)))


# direct_logit_attribution ----------------------------------------------------------------------

def _head_results_last(model, cache, layer):
    return torch.einsum("bhd,hdm->bhm", cache[f"blocks.{layer}.attn.hook_z"][:, -1], model.W_O[layer])


def dla_without_layer_norm_scale(model, cache, answer_tokens):
    """Forgets to divide by the final layer norm's scale."""
    out = []
    for l in range(model.cfg.n_layers):
        r = _head_results_last(model, cache, l)
        r = r - r.mean(-1, keepdim=True)
        out.append(torch.einsum("bhm,mb->bh", r, model.W_U[:, answer_tokens]))
    return torch.stack(out, 1)


def dla_first_answer_for_all(model, cache, answer_tokens):
    """Uses the first answer's unembedding for every sequence."""
    scale = cache["ln_final.hook_scale"][:, -1]
    out = []
    for l in range(model.cfg.n_layers):
        r = _head_results_last(model, cache, l)
        r = (r - r.mean(-1, keepdim=True)) / scale[:, None]
        out.append(r @ model.W_U[:, answer_tokens[0]])
    return torch.stack(out, 1)


def dla_mean_over_positions(model, cache, answer_tokens):
    """Averages over all positions instead of taking the last one."""
    scale = cache["ln_final.hook_scale"]  # [batch, pos, 1]
    out = []
    for l in range(model.cfg.n_layers):
        r = torch.einsum("bphd,hdm->bphm", cache[f"blocks.{l}.attn.hook_z"], model.W_O[l])
        r = (r - r.mean(-1, keepdim=True)) / scale[:, :, None]
        out.append(torch.einsum("bphm,mb->bh", r, model.W_U[:, answer_tokens]) / r.shape[1])
    return torch.stack(out, 1)


# ablation_loss_change ------------------------------------------------------------------------

def _ablate(model, tokens, layer, fill, add_hook=False):
    def hook(z, hook):
        z = z.clone()
        fill(z)
        return z
    clean = model(tokens, return_type="loss")
    if add_hook:
        model.add_hook(f"blocks.{layer}.attn.hook_z", hook)
        return model(tokens, return_type="loss") - clean
    with model.hooks(fwd_hooks=[(f"blocks.{layer}.attn.hook_z", hook)]):
        return model(tokens, return_type="loss") - clean


def ablation_whole_layer(model, tokens, layer, head, method):
    """Ablates every head of the layer."""
    def fill(z):
        z[:] = 0.0 if method == "zero" else z.mean(dim=(0, 1), keepdim=True)
    return _ablate(model, tokens, layer, fill)


def ablation_mean_per_position(model, tokens, layer, head, method):
    """Mean ablation averages over the batch only, keeping one mean per position."""
    def fill(z):
        z[:, :, head] = 0.0 if method == "zero" else z[:, :, head].mean(0, keepdim=True)
    return _ablate(model, tokens, layer, fill)


def ablation_returns_ablated_loss(model, tokens, layer, head, method):
    """Returns the ablated loss, not the change."""
    def fill(z):
        z[:, :, head] = 0.0 if method == "zero" else z[:, :, head].mean(dim=(0, 1))
    return _ablate(model, tokens, layer, fill) + model(tokens, return_type="loss")


def ablation_hook_left_behind(model, tokens, layer, head, method):
    """Right numbers the first time, but the hook stays on the model (`model.add_hook`)."""
    def fill(z):
        z[:, :, head] = 0.0 if method == "zero" else z[:, :, head].mean(dim=(0, 1))
    return _ablate(model, tokens, layer, fill, add_hook=True)


# positional_attention ------------------------------------------------------------------------

def _positions(model, n):
    pos = model.pos_embed.W_pos[:n]
    pos = pos - pos.mean(-1, keepdim=True)
    return pos / pos.pow(2).mean(-1, keepdim=True).sqrt()


def _causal_softmax(scores):
    n = scores.shape[-1]
    return scores.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf")).softmax(-1)


def positional_without_scale(model, layer, head, n_positions):
    """Forgets to divide the scores by sqrt(d_head)."""
    pos = _positions(model, n_positions)
    return _causal_softmax((pos @ model.W_Q[layer, head]) @ (pos @ model.W_K[layer, head]).T)


def positional_without_layer_norm(model, layer, head, n_positions):
    """Uses raw W_pos rows, skipping the layer norm."""
    pos = model.pos_embed.W_pos[:n_positions]
    scores = (pos @ model.W_Q[layer, head]) @ (pos @ model.W_K[layer, head]).T / math.sqrt(model.cfg.d_head)
    return _causal_softmax(scores)


def positional_without_mask(model, layer, head, n_positions):
    """Forgets the causal mask."""
    pos = _positions(model, n_positions)
    scores = (pos @ model.W_Q[layer, head]) @ (pos @ model.W_K[layer, head]).T / math.sqrt(model.cfg.d_head)
    return scores.softmax(-1)


WRONG = {
    "attention_pattern": [pattern_from_scores, pattern_wrong_axis, pattern_transposed, pattern_always_layer_zero],
    "residual_norms": [norms_without_final, norms_with_add_hook, norms_squared],
    "decompose_residual": [decompose_without_positions, decompose_with_resid_mid, decompose_attention_first],
    "head_results": [results_with_bias_per_head, results_first_layer_weights, results_wrong_layer_z],
    "previous_token_scores": [previous_including_position_zero, previous_wrong_diagonal, previous_first_sequence_only],
    "current_token_scores": [current_including_position_zero, current_heads_and_layers_swapped],
    "first_token_scores": [first_last_key, first_including_position_zero],
    "direct_logit_attribution": [dla_without_layer_norm_scale, dla_first_answer_for_all, dla_mean_over_positions],
    "ablation_loss_change": [ablation_whole_layer, ablation_mean_per_position, ablation_returns_ablated_loss,
                             ablation_hook_left_behind],
    "positional_attention": [positional_without_scale, positional_without_layer_norm, positional_without_mask],
}
