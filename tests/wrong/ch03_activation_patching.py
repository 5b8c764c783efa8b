"""Realistic wrong versions of chapter 03's exercises."""
import torch

WRONG = {}

# ============================================================ part 1: metrics and patching (H4)

# ============================================================ part 2: attribution, discovery, faithfulness (H5)


# --- attribution_patch


def _attribution_parts(model, clean_tokens, corrupted_tokens, answer, wrong, hook_name, grad_on):
    """Clean and corrupted activations, and the gradient of the mean logit difference on ``grad_on``."""
    stored = {}
    with torch.no_grad():
        _, clean = model.run_with_cache(clean_tokens, names_filter=lambda name: name == hook_name)
        _, corrupted = model.run_with_cache(corrupted_tokens, names_filter=lambda name: name == hook_name)
    with torch.enable_grad(), model.hooks(bwd_hooks=[(hook_name, lambda grad, hook: stored.__setitem__("grad", grad.detach()))]):
        logits = model(grad_on)
        _ref.logit_difference(logits, answer, wrong).mean().backward()
    model.zero_grad(set_to_none=True)
    return clean[hook_name], corrupted[hook_name], stored["grad"]


def gradient_on_the_clean_run(model, clean_tokens, corrupted_tokens, answer, wrong, hook_name):
    """Takes the gradient on the clean run instead of the corrupted one."""
    clean, corrupted, grad = _attribution_parts(model, clean_tokens, corrupted_tokens, answer, wrong, hook_name, clean_tokens)
    return ((clean - corrupted) * grad).sum(-1).sum(0)


def corrupted_minus_clean(model, clean_tokens, corrupted_tokens, answer, wrong, hook_name):
    """Uses a_corrupted - a_clean (the noising direction) with the corrupted gradient."""
    clean, corrupted, grad = _attribution_parts(model, clean_tokens, corrupted_tokens, answer, wrong, hook_name,
                                                corrupted_tokens)
    return ((corrupted - clean) * grad).sum(-1).sum(0)


def summed_over_prompts(model, clean_tokens, corrupted_tokens, answer, wrong, hook_name):
    """Differentiates the sum of the logit differences, so the estimate is len(batch) times too big."""
    return _ref.attribution_patch(model, clean_tokens, corrupted_tokens, answer, wrong, hook_name) * len(answer)


# --- edge_attribution_scores


def edge_scores_mean_over_positions(writer_deltas, reader_grads, mask):
    """Averages over positions instead of summing."""
    return _ref.edge_attribution_scores(writer_deltas, reader_grads, mask) / writer_deltas.shape[2]


def edge_scores_without_mask(writer_deltas, reader_grads, mask):
    """Scores every pair, also writers that come after their reader."""
    return torch.einsum("wbpd,rbpd->wr", writer_deltas, reader_grads) / writer_deltas.shape[1]


def edge_scores_summed_over_batch(writer_deltas, reader_grads, mask):
    """Sums over the batch instead of averaging."""
    return torch.einsum("wbpd,rbpd->wr", writer_deltas, reader_grads) * mask


# --- circuit_from_scores


def circuit_signed_threshold(scores, threshold, owner):
    """Keeps edges with score >= threshold, dropping strong negative edges."""
    return _ref.circuit_from_scores(scores.clamp_min(0), threshold, owner)


def circuit_without_pruning(scores, threshold, owner):
    """Thresholds only: dead ends stay."""
    return scores.abs() >= threshold


def circuit_pruned_once(scores, threshold, owner):
    """Drops edges into readers whose owner has no kept edge at all, once, without following
    the pruning through to the logits."""
    kept = scores.abs() >= threshold
    owner = torch.as_tensor(owner)
    has_out = kept.any(dim=1)
    leads = (owner < 0) | has_out[owner.clamp_min(0)]
    return kept & leads[None]


# --- faithfulness


def _ablated_run(model, tokens, answer, wrong, reference_tokens, heads, mlps, *, replacement, invert=False,
                 skip_mlps=False):
    cfg, kept = model.cfg, {(int(layer), int(head)) for layer, head in heads}
    with torch.no_grad():
        _, ref = model.run_with_cache(reference_tokens)

    def put(value, outside):
        def hook(act, hook):
            act = act.clone()
            if outside is None:
                act[:] = value
            else:
                act[:, :, outside] = value[..., outside, :]
            return act
        return hook

    hooks = []
    for layer in range(cfg.n_layers):
        outside = [h for h in range(cfg.n_heads) if ((layer, h) in kept) == invert]
        z, mlp = ref[f"blocks.{layer}.attn.hook_z"], ref[f"blocks.{layer}.hook_mlp_out"] if not cfg.attn_only else None
        hooks.append((f"blocks.{layer}.attn.hook_z", put(replacement(z), outside)))
        if mlp is not None and not skip_mlps and (layer in {int(m) for m in mlps}) == invert:
            hooks.append((f"blocks.{layer}.hook_mlp_out", put(replacement(mlp), None)))
    with torch.no_grad():
        logits = model.run_with_hooks(tokens, fwd_hooks=hooks)
    return _ref.logit_difference(logits, answer, wrong), (logits[:, -1].argmax(-1) == answer).float()


def zero_ablation(model, tokens, answer, wrong, reference_tokens, heads, mlps):
    """Sets everything outside the circuit to zero instead of its mean."""
    return _ablated_run(model, tokens, answer, wrong, reference_tokens, heads, mlps,
                        replacement=lambda x: torch.zeros_like(x[0]))


def mean_over_positions_too(model, tokens, answer, wrong, reference_tokens, heads, mlps):
    """Averages the reference activations over positions as well as prompts."""
    return _ablated_run(model, tokens, answer, wrong, reference_tokens, heads, mlps,
                        replacement=lambda x: x.mean(dim=(0, 1)).expand_as(x[0]))


def ablates_the_circuit(model, tokens, answer, wrong, reference_tokens, heads, mlps):
    """Mean-ablates the circuit's own components and keeps everything else."""
    return _ablated_run(model, tokens, answer, wrong, reference_tokens, heads, mlps,
                        replacement=lambda x: x.mean(0), invert=True)


def forgets_the_mlps(model, tokens, answer, wrong, reference_tokens, heads, mlps):
    """Ablates the heads outside the circuit but never the MLPs."""
    return _ablated_run(model, tokens, answer, wrong, reference_tokens, heads, mlps,
                        replacement=lambda x: x.mean(0), skip_mlps=True)


# --- bootstrap_ci


def resamples_kept_and_full_apart(kept, full, n_resamples, seed, level=0.95):
    """Draws separate indices for kept and full, breaking the pairing."""
    g = torch.Generator().manual_seed(seed)
    n = len(kept)
    a, b = torch.randint(0, n, (n_resamples, n), generator=g), torch.randint(0, n, (n_resamples, n), generator=g)
    ratios = kept[a].mean(1) / full[b].mean(1)
    return torch.quantile(ratios, torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=ratios.dtype))


def mean_of_ratios(kept, full, n_resamples, seed, level=0.95):
    """Resamples the mean of per-prompt ratios instead of the ratio of means."""
    return _ref.bootstrap_ci(kept / full, torch.ones_like(full), n_resamples, seed, level)


def ignores_the_level(kept, full, n_resamples, seed, level=0.95):
    """Always returns the 95% interval."""
    return _ref.bootstrap_ci(kept, full, n_resamples, seed)


def normal_approximation(kept, full, n_resamples, seed, level=0.95):
    """Mean plus or minus 1.96 bootstrap standard deviations instead of percentiles."""
    g = torch.Generator().manual_seed(seed)
    index = torch.randint(0, len(kept), (n_resamples, len(kept)), generator=g)
    ratios = kept[index].mean(1) / full[index].mean(1)
    centre = kept.mean() / full.mean()
    return torch.stack([centre - 1.96 * ratios.std(), centre + 1.96 * ratios.std()])


WRONG.update({
    "attribution_patch": [gradient_on_the_clean_run, corrupted_minus_clean, summed_over_prompts],
    "edge_attribution_scores": [edge_scores_mean_over_positions, edge_scores_without_mask, edge_scores_summed_over_batch],
    "circuit_from_scores": [circuit_signed_threshold, circuit_without_pruning, circuit_pruned_once],
    "faithfulness": [zero_ablation, mean_over_positions_too, ablates_the_circuit, forgets_the_mlps],
    "bootstrap_ci": [resamples_kept_and_full_apart, mean_of_ratios, ignores_the_level, normal_approximation],
})
