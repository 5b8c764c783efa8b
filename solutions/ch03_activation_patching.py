"""Reference solutions for chapter 03: activation patching and circuit discovery."""
import torch
from torch import Tensor

# ============================================================ part 1: metrics and patching (H4)

# ============================================================ part 2: attribution, discovery, faithfulness (H5)


def attribution_patch(model, clean_tokens: Tensor, corrupted_tokens: Tensor, answer: Tensor, wrong: Tensor,
                      hook_name: str) -> Tensor:
    """Estimate every patch of one activation at once, from one clean forward pass and one
    forward and backward pass on the corrupted prompts (attribution patching).

    Patching the activation a at ``hook_name`` from its corrupted value to its clean value
    changes the metric by about (a_clean - a_corrupted) . d metric / d a, the gradient taken
    on the corrupted run: a first-order Taylor expansion. The metric is the mean over prompts
    of :func:`logit_difference`.
    hook_name: e.g. ``blocks.1.hook_resid_pre`` ([batch, pos, d_model]) or
    ``blocks.1.attn.hook_z`` ([batch, pos, n_heads, d_head]).
    Returns the estimate of patching each position (and head) alone: the product summed over
    the last dimension and over the batch, so [pos] or [pos, n_heads].
    """
    with torch.no_grad():
        _, clean_cache = model.run_with_cache(clean_tokens, names_filter=lambda name: name == hook_name)
    stored = {}

    def keep_activation(activation, hook):
        stored["act"] = activation.detach().clone()

    def keep_gradient(grad, hook):
        stored["grad"] = grad.detach().clone()

    hooks = model.hooks(fwd_hooks=[(hook_name, keep_activation)], bwd_hooks=[(hook_name, keep_gradient)])
    with torch.enable_grad(), hooks:  # a backward pass, even where the caller turned gradients off
        logits = model(corrupted_tokens)
        logit_difference(logits, answer, wrong).mean().backward()
    model.zero_grad(set_to_none=True)
    delta = clean_cache[hook_name] - stored["act"]
    return (delta * stored["grad"]).sum(dim=-1).sum(dim=0)


def edge_attribution_scores(writer_deltas: Tensor, reader_grads: Tensor, mask: Tensor) -> Tensor:
    """Edge attribution patching: a linear estimate of patching every edge of the graph.

    writer_deltas: [n_writers, batch, pos, d_model], each writer's clean output minus its
    corrupted output. reader_grads: [n_readers, batch, pos, d_model], the gradient of the metric
    with respect to each reader's input on the corrupted run (one metric per prompt).
    mask: [n_writers, n_readers] bool, True where the writer comes before the reader.
    Patching the edge w -> r adds writer w's delta to reader r's input only, so its estimated
    effect is delta_w . grad_r, summed over positions and d_model and averaged over the batch.
    Returns [n_writers, n_readers], 0 where ``mask`` is False.
    """
    scores = torch.einsum("wbpd,rbpd->wr", writer_deltas, reader_grads) / writer_deltas.shape[1]
    return scores * mask


def circuit_from_scores(scores: Tensor, threshold: float, owner: list) -> Tensor:
    """Keep the edges whose score is at least ``threshold`` in size, then drop dead ends.

    scores: [n_writers, n_readers] edge scores. owner: for each reader, the index of the
    writer whose input it is (-1 for the logits).
    An edge w -> r is kept if |score| >= threshold and r leads to the logits: r is the logits,
    or r's owner has a kept edge that leads to the logits. Returns [n_writers, n_readers] bool.
    """
    kept = scores.abs() >= threshold
    owner = torch.as_tensor(owner)
    alive = torch.zeros(scores.shape[0], dtype=torch.bool)
    while True:
        leads = (owner < 0) | alive[owner.clamp_min(0)]
        now = (kept & leads[None]).any(dim=1)
        if torch.equal(now, alive):
            return kept & leads[None]
        alive = now


def faithfulness(model, tokens: Tensor, answer: Tensor, wrong: Tensor, reference_tokens: Tensor,
                 heads: list, mlps: list) -> tuple[Tensor, Tensor]:
    """Run the model with everything outside a circuit mean-ablated.

    heads: the (layer, head) pairs of the circuit; mlps: the layers whose MLP is in it.
    Every other head's ``hook_z`` and every other MLP's ``hook_mlp_out`` is replaced by its
    mean over ``reference_tokens`` ([n_ref, pos], the same length as ``tokens``), position by
    position.
    Returns (logit differences [batch], top-1 correct [batch] as floats 0/1): the
    :func:`logit_difference` of each prompt and whether its final-position argmax is ``answer``.
    """
    cfg, kept = model.cfg, {(int(layer), int(head)) for layer, head in heads}
    wanted = lambda name: name.endswith("hook_z") or name.endswith("hook_mlp_out")  # noqa: E731
    with torch.no_grad():
        _, ref = model.run_with_cache(reference_tokens, names_filter=wanted)

    def put_mean(mean: Tensor, outside: list | None):
        def hook(activation, hook):
            activation = activation.clone()
            if outside is None:                       # an MLP: the whole output
                activation[:] = mean
            else:                                     # hook_z: only the heads outside
                activation[:, :, outside] = mean[:, outside]
            return activation
        return hook

    hooks = []
    for layer in range(cfg.n_layers):
        outside = [h for h in range(cfg.n_heads) if (layer, h) not in kept]
        hooks.append((f"blocks.{layer}.attn.hook_z", put_mean(ref[f"blocks.{layer}.attn.hook_z"].mean(0), outside)))
        if not cfg.attn_only and layer not in {int(m) for m in mlps}:
            hooks.append((f"blocks.{layer}.hook_mlp_out", put_mean(ref[f"blocks.{layer}.hook_mlp_out"].mean(0), None)))
    with torch.no_grad():
        logits = model.run_with_hooks(tokens, fwd_hooks=hooks)
    return logit_difference(logits, answer, wrong), (logits[:, -1].argmax(-1) == answer).float()


def bootstrap_ci(kept: Tensor, full: Tensor, n_resamples: int, seed: int, level: float = 0.95) -> Tensor:
    """Percentile bootstrap confidence interval for the ratio mean(kept) / mean(full).

    kept, full: [n] paired values per prompt (e.g. the circuit's and the full model's logit
    differences; for an accuracy, full is all ones). Draw ``n_resamples`` resamples of the n
    prompts with replacement, all at once with
    ``torch.randint(0, n, (n_resamples, n), generator=torch.Generator().manual_seed(seed))``,
    compute the ratio on each, and return the (1 - level) / 2 and (1 + level) / 2 quantiles
    (``torch.quantile``) as a tensor [2].
    """
    n = len(kept)
    index = torch.randint(0, n, (n_resamples, n), generator=torch.Generator().manual_seed(seed))
    ratios = kept[index].mean(dim=1) / full[index].mean(dim=1)
    return torch.quantile(ratios, torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=ratios.dtype))
