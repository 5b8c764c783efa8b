"""Reference solutions for chapter 01: circuits and the residual stream.

Each function's source replaces the stub in the solved notebook, so it uses only the names the
notebook imports in its first cell (math, torch, Tensor, ActivationCache, FactoredMatrix,
TransformerBridge).
"""
import math

import torch
from torch import Tensor
from transformer_lens import ActivationCache, FactoredMatrix
from transformer_lens.model_bridge import TransformerBridge


def attention_pattern(model: TransformerBridge, tokens: Tensor, layer: int, head: int) -> Tensor:
    """The attention pattern of one head on a batch of token sequences.

    tokens: [batch, pos] token ids (with the BOS token first, as `model.to_tokens` makes them).
    Returns [batch, query_pos, key_pos]: row q holds how much query position q attends to each
    key position (the softmaxed pattern, read from the hook `blocks.{layer}.attn.hook_pattern`).
    """
    _, cache = model.run_with_cache(tokens, names_filter=f"blocks.{layer}.attn.hook_pattern")
    return cache[f"blocks.{layer}.attn.hook_pattern"][:, head]


def residual_norms(model: TransformerBridge, tokens: Tensor) -> Tensor:
    """The norm of the residual stream entering every layer, and after the last one, recorded with
    forward hooks inside `model.hooks(...)` so that no hook outlives the call.

    Returns [n_layers + 1, batch, pos]: entry l < n_layers is the L2 norm (over d_model) of
    `blocks.{l}.hook_resid_pre`; the last entry is that of `blocks.{n_layers - 1}.hook_resid_post`.
    """
    n_layers = model.cfg.n_layers
    names = [f"blocks.{l}.hook_resid_pre" for l in range(n_layers)] + [f"blocks.{n_layers - 1}.hook_resid_post"]
    norms = [None] * len(names)

    def recorder(i):
        def record_norm(activation, hook):
            norms[i] = activation.norm(dim=-1).detach()
        return record_norm

    with model.hooks(fwd_hooks=[(name, recorder(i)) for i, name in enumerate(names)]):
        model(tokens)
    return torch.stack(norms)


def decompose_residual(model: TransformerBridge, cache: ActivationCache) -> Tensor:
    """Split the final residual stream into the pieces that were added to it.

    Returns [n_components, batch, pos, d_model] in this order: the token embedding (`hook_embed`),
    the positional embedding (`hook_pos_embed`), then for each layer its attention output
    (`blocks.{l}.hook_attn_out`) and its MLP output (`blocks.{l}.hook_mlp_out`; left out when
    `model.cfg.attn_only`). Their sum is `blocks.{n_layers - 1}.hook_resid_post`.
    """
    pieces = [cache["hook_embed"], cache["hook_pos_embed"]]
    for layer in range(model.cfg.n_layers):
        pieces.append(cache[f"blocks.{layer}.hook_attn_out"])
        if not model.cfg.attn_only:
            pieces.append(cache[f"blocks.{layer}.hook_mlp_out"])
    return torch.stack(pieces)


def head_results(model: TransformerBridge, cache: ActivationCache, layer: int) -> Tensor:
    """What each attention head of `layer` writes into the residual stream.

    Head h writes z_h @ W_O[layer, h], where z_h ([batch, pos, d_head], `blocks.{layer}.attn.hook_z`)
    is the attention-weighted sum of its values. Returns [batch, pos, n_heads, d_model]; the sum
    over heads plus the bias `model.b_O[layer]` is the layer's attention output.
    """
    z = cache[f"blocks.{layer}.attn.hook_z"]  # [batch, pos, n_heads, d_head]
    return torch.einsum("bphd,hdm->bphm", z, model.W_O[layer])


def previous_token_scores(model: TransformerBridge, cache: ActivationCache) -> Tensor:
    """How much each head attends from each token to the token just before it.

    For every head, the attention from query position q to key position q - 1, averaged over the
    batch and over query positions q = 1 .. pos - 1 (position 0 has no previous token).
    Returns [n_layers, n_heads] with values in [0, 1].
    """
    scores = []
    for layer in range(model.cfg.n_layers):
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"]  # [batch, head, q, k]
        scores.append(pattern.diagonal(offset=-1, dim1=-2, dim2=-1).mean(dim=(0, -1)))
    return torch.stack(scores)


def current_token_scores(model: TransformerBridge, cache: ActivationCache) -> Tensor:
    """How much each head attends from each token to itself (the diagonal of its pattern).

    For every head, the attention from query position q to key position q, averaged over the
    batch and over query positions q = 1 .. pos - 1 (at position 0 every head must attend to
    itself, so it tells us nothing). Returns [n_layers, n_heads] with values in [0, 1].
    """
    scores = []
    for layer in range(model.cfg.n_layers):
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"]
        scores.append(pattern.diagonal(dim1=-2, dim2=-1)[..., 1:].mean(dim=(0, -1)))
    return torch.stack(scores)


def first_token_scores(model: TransformerBridge, cache: ActivationCache) -> Tensor:
    """How much each head attends to the first token (usually BOS, the "attention sink").

    For every head, the attention from query position q to key position 0, averaged over the
    batch and over query positions q = 1 .. pos - 1 (position 0 can only attend to itself).
    Returns [n_layers, n_heads] with values in [0, 1].
    """
    scores = []
    for layer in range(model.cfg.n_layers):
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"]
        scores.append(pattern[:, :, 1:, 0].mean(dim=(0, -1)))
    return torch.stack(scores)


def direct_logit_attribution(model: TransformerBridge, cache: ActivationCache, answer_tokens: Tensor) -> Tensor:
    """Direct logit attribution: how much each head, through the residual stream alone, raises
    the logit of the right answer at the last position.

    answer_tokens: [batch] the correct next token of each sequence in the cache.
    A head's output at the last position goes through the final layer norm, which (its weights
    folded into W_U) subtracts the mean over d_model and divides by the scale cached at
    `ln_final.hook_scale`; then it is dotted with the answer's unembedding column W_U[:, answer].
    Returns [batch, n_layers, n_heads].
    """
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
    scale = cache["ln_final.hook_scale"][:, -1]  # [batch, 1]
    directions = model.W_U[:, answer_tokens].T  # [batch, d_model]
    out = torch.zeros(answer_tokens.shape[0], n_layers, n_heads)
    for layer in range(n_layers):
        z = cache[f"blocks.{layer}.attn.hook_z"][:, -1]  # [batch, n_heads, d_head]
        results = torch.einsum("bhd,hdm->bhm", z, model.W_O[layer])
        results = (results - results.mean(dim=-1, keepdim=True)) / scale[:, None]
        out[:, layer] = torch.einsum("bhm,bm->bh", results, directions)
    return out


def ablation_loss_change(model: TransformerBridge, tokens: Tensor, layer: int, head: int, method: str) -> Tensor:
    """The increase in next-token loss when one head is ablated.

    method "zero": the head's output z (`blocks.{layer}.attn.hook_z`, [batch, pos, n_heads, d_head])
    is set to 0. method "mean": it is replaced by its mean over the batch and all positions of
    `tokens`. Returns a scalar tensor: ablated loss minus clean loss (mean cross-entropy,
    `model(tokens, return_type="loss")`). The hook lives only inside `model.hooks(...)`.
    """
    if method not in ("zero", "mean"):
        raise ValueError(f"method must be 'zero' or 'mean', not {method!r}")
    _, cache = model.run_with_cache(tokens, names_filter=f"blocks.{layer}.attn.hook_z")
    z_mean = cache[f"blocks.{layer}.attn.hook_z"][:, :, head].mean(dim=(0, 1))

    def ablate(z, hook):
        z = z.clone()
        z[:, :, head] = 0.0 if method == "zero" else z_mean
        return z

    clean = model(tokens, return_type="loss")
    with model.hooks(fwd_hooks=[(f"blocks.{layer}.attn.hook_z", ablate)]):
        ablated = model(tokens, return_type="loss")
    return (ablated - clean).detach()


def positional_attention(model: TransformerBridge, layer: int, head: int, n_positions: int) -> Tensor:
    """The attention pattern a head would have if the residual stream held only positions.

    Take the first n_positions rows of W_pos, pass each through the (weight-folded) layer norm,
    i.e. subtract its mean and divide by its root-mean-square, then form the positional QK
    circuit as a low-rank FactoredMatrix (pos_q W_Q[layer, head]) (pos_k W_K[layer, head])^T,
    scale by 1/sqrt(d_head), mask the future and softmax over keys. Biases are ignored.
    Returns [n_positions, n_positions] (query, key).
    """
    pos = model.pos_embed.W_pos[:n_positions]
    pos = pos - pos.mean(dim=-1, keepdim=True)
    pos = pos / pos.pow(2).mean(dim=-1, keepdim=True).sqrt()
    qk = FactoredMatrix(pos @ model.W_Q[layer, head], (pos @ model.W_K[layer, head]).T)
    scores = qk.AB / math.sqrt(model.cfg.d_head)
    future = torch.ones(n_positions, n_positions, dtype=torch.bool).triu(1)
    return scores.masked_fill(future, float("-inf")).softmax(dim=-1)
