"""Reference solutions for chapter 02: induction heads."""
import torch
from torch import Tensor


def repeated_random_tokens(candidates: Tensor, half_len: int, batch: int, bos: int, seed: int) -> Tensor:
    """Build a batch of repeated random sequences: BOS, then n random tokens, then the same n again.

    candidates: 1-D tensor of token ids to draw from.
    half_len: n, the length of the random part (at most len(candidates)).
    batch: number of rows.
    bos: the beginning-of-sequence token id, put at position 0 of every row.
    seed: seeds a torch.Generator, so the same arguments always give the same batch.
    Returns a long tensor [batch, 1 + 2 * half_len]. Within a row, the n random tokens are
    distinct (drawn without replacement), so each token of the repeat has exactly one earlier
    occurrence.
    """
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(batch):
        half = candidates[torch.randperm(len(candidates), generator=generator)[:half_len]].long()
        rows.append(torch.cat([torch.tensor([bos], dtype=torch.long), half, half]))
    return torch.stack(rows)


def token_losses(logits: Tensor, tokens: Tensor) -> Tensor:
    """The loss on every predicted token.

    logits: [batch, pos, d_vocab] model outputs; tokens: [batch, pos] the input tokens.
    Returns [batch, pos - 1]: entry p is -log P(tokens[:, p + 1]) under logits[:, p], the
    model's prediction of the next token made at position p.
    """
    log_probs = logits[:, :-1].log_softmax(dim=-1)
    return -log_probs.gather(-1, tokens[:, 1:, None])[..., 0]


def previous_token_score(pattern: Tensor) -> Tensor:
    """How much each head attends to the previous token.

    pattern: [batch, n_heads, query_pos, key_pos] attention patterns of one layer.
    Returns [n_heads]: the attention from each query position q >= 1 to key position q - 1,
    averaged over those positions and the batch.
    """
    n = pattern.shape[-1]
    query = torch.arange(1, n, device=pattern.device)
    return pattern[:, :, query, query - 1].mean(dim=(0, 2))


def induction_score(pattern: Tensor, tokens: Tensor) -> Tensor:
    """How much each head attends to the token *after* an earlier occurrence of the current token.

    pattern: [batch, n_heads, query_pos, key_pos] attention patterns of one layer.
    tokens: [batch, pos] the tokens the patterns were computed on.
    For a query position q, the induction targets are the key positions k = j + 1 such that
    j < q and tokens[j] == tokens[q]. A query that has targets puts some total attention on
    them. Returns [n_heads]: that total, averaged over every query in the batch that has at
    least one target (queries without targets are left out).
    """
    n = tokens.shape[-1]
    same = tokens[:, :, None] == tokens[:, None, :]                       # [batch, q, j]
    earlier = torch.ones(n, n, dtype=torch.bool, device=tokens.device).tril(-1)
    previous_copy = same & earlier                                         # j < q and same token
    targets = torch.zeros_like(previous_copy)
    targets[:, :, 1:] = previous_copy[:, :, :-1]                           # k = j + 1
    on_targets = (pattern * targets[:, None].to(pattern.dtype)).sum(dim=-1)  # [batch, head, q]
    has_target = targets.any(dim=-1)                                       # [batch, q]
    return (on_targets * has_target[:, None]).sum(dim=(0, 2)) / has_target.sum().clamp_min(1)


def head_logit_attribution(z: Tensor, W_O: Tensor, final_scale: Tensor, W_U: Tensor, tokens: Tensor) -> Tensor:
    """Direct logit attribution of each head of one layer to the correct next token.

    z: [batch, pos, n_heads, d_head] the heads' mixed values (``cache["z", layer]``).
    W_O: [n_heads, d_head, d_model] the layer's output weights.
    final_scale: [batch, pos, 1] the final LayerNorm's scale (``cache["ln_final.hook_scale"]``).
    W_U: [d_model, d_vocab] the unembedding (with the final LayerNorm's weight folded in).
    tokens: [batch, pos].
    Returns [batch, pos - 1, n_heads]: what head h's output at position p adds to the logit of
    tokens[:, p + 1]. The final LayerNorm subtracts the mean over d_model and divides by the
    scale; both are linear once the scale is fixed, so apply them to each head's output.
    """
    out = torch.einsum("bphd,hdm->bphm", z, W_O)
    out = out - out.mean(dim=-1, keepdim=True)
    out = out / final_scale[:, :, None]
    directions = W_U[:, tokens[:, 1:]]                                     # [d_model, batch, pos-1]
    return torch.einsum("bphm,mbp->bph", out[:, :-1], directions)


def repeat_loss_with_ablation(model, tokens: Tensor, heads: list) -> Tensor:
    """Per-token loss when some heads are zero-ablated.

    model: a TransformerBridge. tokens: [batch, pos].
    heads: a list of (layer, head) pairs whose output is removed: set their ``hook_z`` values
    (``blocks.{layer}.attn.hook_z``, shape [batch, pos, n_heads, d_head]) to zero.
    Returns [batch, pos - 1], the :func:`token_losses` of the ablated run. The model must be left
    without hooks afterwards.
    """
    by_layer = {}
    for layer, head in heads:
        by_layer.setdefault(int(layer), []).append(int(head))

    def hook_for(layer_heads):
        def zero_heads(z, hook):
            z = z.clone()
            z[:, :, layer_heads] = 0.0
            return z
        return zero_heads

    fwd_hooks = [(f"blocks.{layer}.attn.hook_z", hook_for(hs)) for layer, hs in by_layer.items()]
    with torch.no_grad():
        logits = model.run_with_hooks(tokens, fwd_hooks=fwd_hooks)
    return token_losses(logits, tokens)


def composition_score(W_A: Tensor, W_B: Tensor) -> Tensor:
    """How much of the product W_A @ W_B survives: ||W_A W_B||_F / (||W_A||_F ||W_B||_F).

    W_A: [m, n], W_B: [n, p]. Returns a 0-dimensional tensor, between 0 and 1.
    """
    return torch.linalg.matrix_norm(W_A @ W_B) / (torch.linalg.matrix_norm(W_A) * torch.linalg.matrix_norm(W_B))


def k_composition_scores(W_V0: Tensor, W_O0: Tensor, W_Q1: Tensor, W_K1: Tensor) -> Tensor:
    """K-composition between every head of an early layer and every head of a later layer.

    W_V0: [n_heads0, d_model, d_head], W_O0: [n_heads0, d_head, d_model] (the early layer).
    W_Q1, W_K1: [n_heads1, d_model, d_head] (the later layer).
    With TransformerLens's row-vector convention, head h0 writes x @ W_OV (W_OV = W_V0[h0] @
    W_O0[h0]) and head h1 scores a query x_q against a key x_k as x_q @ W_QK @ x_k.T
    (W_QK = W_Q1[h1] @ W_K1[h1].T). When the key is h0's output the score is
    x_q @ W_QK @ W_OV.T @ x.T, so the K-composition score is
    composition_score(W_OV, W_QK.T). Returns [n_heads0, n_heads1].
    """
    scores = torch.zeros(W_V0.shape[0], W_Q1.shape[0], dtype=W_V0.dtype)
    for h0 in range(W_V0.shape[0]):
        W_OV = W_V0[h0] @ W_O0[h0]
        for h1 in range(W_Q1.shape[0]):
            W_QK = W_Q1[h1] @ W_K1[h1].T
            scores[h0, h1] = composition_score(W_OV, W_QK.T)
    return scores
