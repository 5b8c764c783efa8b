"""Realistic wrong versions of chapter 03's exercises."""
import torch

WRONG = {}

# ============================================================ part 1: metrics and patching (H4)
from solutions import ch03_activation_patching as _ref


def logit_difference_all_positions(logits, answer, wrong):
    """Averages the logit difference over every position instead of reading the final one."""
    diff = logits.gather(-1, answer[:, None, None].expand(-1, logits.shape[1], 1)) - \
        logits.gather(-1, wrong[:, None, None].expand(-1, logits.shape[1], 1))
    return diff[..., 0].mean(-1)


def logit_difference_of_probabilities(logits, answer, wrong):
    """Subtracts probabilities, not logits."""
    probs = logits[:, -1].softmax(-1)
    return probs.gather(-1, answer[:, None])[:, 0] - probs.gather(-1, wrong[:, None])[:, 0]


def normalised_by_clean(value, clean, corrupted):
    """Divides by the clean value alone (forgets that the corrupted run is the zero)."""
    return value / clean


def probability_difference_at_or_above(logits, year_tokens, start):
    """Counts the start year itself as a valid (greater) year."""
    probs = logits[:, -1].softmax(-1)[:, year_tokens]
    later = torch.arange(len(year_tokens))[None] >= start[:, None]
    return (probs * later).sum(-1) - (probs * ~later).sum(-1)


def probability_difference_years_only(logits, year_tokens, start):
    """Takes the softmax over the year tokens only, so the other tokens' mass is ignored."""
    probs = logits[:, -1, year_tokens].softmax(-1)
    later = torch.arange(len(year_tokens))[None] > start[:, None]
    return (probs * later).sum(-1) - (probs * ~later).sum(-1)


def _patch_sweep(model, tokens, source_cache, answer, wrong, names, index_of):
    """Patch ``names[i]`` at ``index_of(j)`` for every i and every j < tokens.shape[1]; mean logit difference."""
    results = torch.zeros(len(names), tokens.shape[1])
    for i, name in enumerate(names):
        for pos in range(tokens.shape[1]):
            def patch(act, hook, pos=pos):
                act = act.clone()
                where = index_of(pos)
                act[where] = source_cache[name][where]
                return act
            with torch.no_grad():
                logits = model.run_with_hooks(tokens, fwd_hooks=[(name, patch)])
            results[i, pos] = _ref.logit_difference(logits, answer, wrong).mean()
    return results


def residual_resid_post(model, tokens, source_cache, answer, wrong):
    """Patches hook_resid_post (the layer's output) instead of hook_resid_pre: every row one layer late."""
    names = [f"blocks.{l}.hook_resid_post" for l in range(model.cfg.n_layers)]
    return _patch_sweep(model, tokens, source_cache, answer, wrong, names, lambda p: (slice(None), p))


def residual_from_own_run(model, tokens, source_cache, answer, wrong):
    """Patches the run's own activations (a cache of `tokens`), so nothing changes."""
    with torch.no_grad():
        _, own = model.run_with_cache(tokens)
    return _ref.patch_residual_stream(model, tokens, own, answer, wrong)


def residual_first_prompt_only(model, tokens, source_cache, answer, wrong):
    """Patches position p of the first prompt only (act[0, p]), not of the whole batch."""
    names = [f"blocks.{l}.hook_resid_pre" for l in range(model.cfg.n_layers)]
    return _patch_sweep(model, tokens, source_cache, answer, wrong, names, lambda p: (0, p))


def residual_leaves_hooks_on(model, tokens, source_cache, answer, wrong):
    """Adds each patch with model.add_hook and clears the previous one before the next run, so the
    values are right but the last patch stays on the model."""
    results = torch.zeros(model.cfg.n_layers, tokens.shape[1])
    for layer in range(model.cfg.n_layers):
        name = f"blocks.{layer}.hook_resid_pre"
        for pos in range(tokens.shape[1]):
            def patch(resid, hook, pos=pos):
                resid = resid.clone()
                resid[:, pos] = source_cache[name][:, pos]
                return resid
            model.reset_hooks()
            model.add_hook(name, patch)
            with torch.no_grad():
                final = model(tokens)[:, -1]
            results[layer, pos] = (final.gather(-1, answer[:, None]) - final.gather(-1, wrong[:, None])).mean()
    return results


def layer_outputs_resid_mid(model, tokens, source_cache, answer, wrong):
    """Patches hook_resid_mid for the attention (the whole stream after attention), not hook_attn_out."""
    layers = range(model.cfg.n_layers)
    attn = _patch_sweep(model, tokens, source_cache, answer, wrong, [f"blocks.{l}.hook_resid_mid" for l in layers],
                        lambda p: (slice(None), p))
    mlp = _patch_sweep(model, tokens, source_cache, answer, wrong, [f"blocks.{l}.hook_mlp_out" for l in layers],
                       lambda p: (slice(None), p))
    return torch.stack([attn, mlp])


def layer_outputs_swapped(model, tokens, source_cache, answer, wrong):
    """Puts the MLP results at index 0 and the attention results at index 1."""
    return _ref.patch_layer_outputs(model, tokens, source_cache, answer, wrong).flip(0)


def heads_index_positions(model, tokens, source_cache, answer, wrong):
    """Indexes z[:, head] (a position) instead of z[:, :, head] (a head)."""
    results = torch.zeros(model.cfg.n_layers, model.cfg.n_heads)
    for layer in range(model.cfg.n_layers):
        name = f"blocks.{layer}.attn.hook_z"
        for head in range(model.cfg.n_heads):
            def patch(z, hook, head=head):
                z = z.clone()
                z[:, head] = source_cache[name][:, head]
                return z
            with torch.no_grad():
                logits = model.run_with_hooks(tokens, fwd_hooks=[(name, patch)])
            results[layer, head] = _ref.logit_difference(logits, answer, wrong).mean()
    return results


def heads_patch_pattern(model, tokens, source_cache, answer, wrong):
    """Patches the attention pattern (where the head looks) instead of its output."""
    results = torch.zeros(model.cfg.n_layers, model.cfg.n_heads)
    for layer in range(model.cfg.n_layers):
        name = f"blocks.{layer}.attn.hook_pattern"
        for head in range(model.cfg.n_heads):
            def patch(pattern, hook, head=head):
                pattern = pattern.clone()
                pattern[:, head] = source_cache[name][:, head]
                return pattern
            with torch.no_grad():
                logits = model.run_with_hooks(tokens, fwd_hooks=[(name, patch)])
            results[layer, head] = _ref.logit_difference(logits, answer, wrong).mean()
    return results


def by_position_all_positions(model, tokens, source_cache, answer, wrong):
    """Patches the head at every position each time, so the position axis only repeats one value."""
    per_head = _ref.patch_head_outputs(model, tokens, source_cache, answer, wrong)
    return per_head[:, None, :].expand(-1, tokens.shape[1], -1).clone()


def by_position_heads_first(model, tokens, source_cache, answer, wrong):
    """Returns [n_layers, n_heads, pos] instead of TransformerLens's [n_layers, pos, n_heads]."""
    return _ref.patch_head_outputs_by_position(model, tokens, source_cache, answer, wrong).transpose(1, 2).contiguous()


def tracing_noise_everywhere(model, tokens, subject_mask, noise, answer):
    """Adds the noise at every position, not only on the subject."""
    return _ref.causal_tracing(model, tokens, torch.ones_like(subject_mask), noise, answer)


def tracing_restores_noised_run(model, tokens, subject_mask, noise, answer):
    """Restores states from a run that had the noise too, so nothing is restored."""
    def add_noise(embed, hook):
        return embed + noise * subject_mask[..., None].to(embed.dtype)

    names = [f"blocks.{l}.hook_resid_pre" for l in range(model.cfg.n_layers)]
    with torch.no_grad(), model.hooks(fwd_hooks=[("hook_embed", add_noise)]):
        _, noised = model.run_with_cache(tokens, names_filter=names)
    results = torch.zeros(model.cfg.n_layers, tokens.shape[1])
    for layer, name in enumerate(names):
        for pos in range(tokens.shape[1]):
            def restore(resid, hook, pos=pos):
                resid = resid.clone()
                resid[:, pos] = noised[name][:, pos]
                return resid
            with torch.no_grad():
                logits = model.run_with_hooks(tokens, fwd_hooks=[("hook_embed", add_noise), (name, restore)])
            results[layer, pos] = logits[:, -1].softmax(-1).gather(-1, answer[:, None]).mean()
    return results


def tracing_log_probability(model, tokens, subject_mask, noise, answer):
    """Reports the answer's log-probability instead of its probability."""
    return _ref.causal_tracing(model, tokens, subject_mask, noise, answer).log()


def path_without_freezing(model, tokens, source_cache, sender, receiver, component, answer, wrong):
    """Patches the sender and lets every other component react: the total effect, not the path's."""
    s_layer, s_head = sender

    name = f"blocks.{s_layer}.attn.hook_z"

    def patch_sender(z, hook):
        z = z.clone()
        z[:, :, s_head] = source_cache[name][:, :, s_head]
        return z

    with torch.no_grad():
        logits = model.run_with_hooks(tokens, fwd_hooks=[(name, patch_sender)])
    return _ref.logit_difference(logits, answer, wrong).mean()


def path_receiver_whole_layer(model, tokens, source_cache, sender, receiver, component, answer, wrong):
    """Patches the chosen input of every head of the receiver's layer, not of the receiver alone."""
    if receiver is None:
        return _ref.path_patch(model, tokens, source_cache, sender, receiver, component, answer, wrong)
    (s_layer, s_head), name = sender, f"blocks.{receiver[0]}.attn.hook_{component}"
    writers = [f"blocks.{l}.attn.hook_z" for l in range(model.cfg.n_layers)]
    writers += [f"blocks.{l}.hook_mlp_out" for l in range(model.cfg.n_layers)]
    with torch.no_grad():
        _, plain = model.run_with_cache(tokens, names_filter=writers)

    def frozen_at(writer):
        def freeze(act, hook):
            act = plain[writer].clone()
            if writer == f"blocks.{s_layer}.attn.hook_z":
                act[:, :, s_head] = source_cache[writer][:, :, s_head]
            return act
        return freeze

    stored = {}
    with torch.no_grad():
        model.run_with_hooks(tokens, fwd_hooks=[(w, frozen_at(w)) for w in writers]
                             + [(name, lambda act, hook: stored.update(v=act.clone()))])
        logits = model.run_with_hooks(tokens, fwd_hooks=[(name, lambda act, hook: stored["v"])])
    return _ref.logit_difference(logits, answer, wrong).mean()


WRONG.update({
    "logit_difference": [logit_difference_all_positions, logit_difference_of_probabilities],
    "normalised_metric": [normalised_by_clean],
    "probability_difference": [probability_difference_at_or_above, probability_difference_years_only],
    "patch_residual_stream": [residual_resid_post, residual_from_own_run, residual_first_prompt_only,
                              residual_leaves_hooks_on],
    "patch_layer_outputs": [layer_outputs_resid_mid, layer_outputs_swapped],
    "patch_head_outputs": [heads_index_positions, heads_patch_pattern],
    "patch_head_outputs_by_position": [by_position_all_positions, by_position_heads_first],
    "causal_tracing": [tracing_noise_everywhere, tracing_restores_noised_run, tracing_log_probability],
    "path_patch": [path_without_freezing, path_receiver_whole_layer],
})


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
