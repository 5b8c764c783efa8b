"""Reference solutions for chapter 03: activation patching and circuit discovery."""
import torch
from torch import Tensor

# ============================================================ part 1: metrics and patching (H4)
from tqdm.auto import tqdm


def logit_difference(logits: Tensor, answer: Tensor, wrong: Tensor) -> Tensor:
    """How much more the model believes the right answer than the wrong one, per prompt.

    logits: [batch, pos, d_vocab] model outputs; answer, wrong: [batch] token ids.
    Returns [batch]: at the final position, logit(answer) - logit(wrong). A difference of
    logits is a difference of log-probabilities (the normaliser cancels), so it measures the
    preference without caring about the rest of the vocabulary.
    """
    final = logits[:, -1]
    return final.gather(-1, answer[:, None])[:, 0] - final.gather(-1, wrong[:, None])[:, 0]


def normalised_metric(value: Tensor, clean: Tensor, corrupted: Tensor) -> Tensor:
    """Rescale a metric so that the corrupted run scores 0 and the clean run scores 1.

    value: a tensor of metric values (any shape), e.g. one per patched component.
    clean, corrupted: 0-d tensors, the metric on the clean and on the corrupted run.
    Returns a tensor shaped like ``value``: (value - corrupted) / (clean - corrupted).
    """
    return (value - corrupted) / (clean - corrupted)


def probability_difference(logits: Tensor, year_tokens: Tensor, start: Tensor) -> Tensor:
    """The greater-than metric of Hanna et al. (2023), per prompt.

    logits: [batch, pos, d_vocab]; year_tokens: [100] the token ids of "00", "01", ... "99";
    start: [batch] the two-digit start year of each prompt (an int 0..99).
    Take the probabilities of the final position (softmax over the whole vocabulary) of the
    100 year tokens. Returns [batch]: the total probability of the years greater than the
    start, minus that of the years up to and including the start.
    """
    probs = logits[:, -1].softmax(dim=-1)[:, year_tokens]                       # [batch, 100]
    later = torch.arange(len(year_tokens), device=logits.device)[None] > start[:, None]
    return (probs * later).sum(-1) - (probs * ~later).sum(-1)


def patch_residual_stream(model, tokens: Tensor, source_cache, answer: Tensor, wrong: Tensor) -> Tensor:
    """Patch the residual stream one layer and one position at a time.

    model: a TransformerBridge. tokens: [batch, pos], the run to patch *into*.
    source_cache: an ActivationCache of a run on other tokens of the same shape, the values
    to patch *from*. (Clean cache into corrupted tokens: denoising; corrupted cache into clean
    tokens: noising.) answer, wrong: [batch] token ids.
    For every layer l and position p, run ``tokens`` with ``blocks.{l}.hook_resid_pre`` at
    position p replaced by the source's value there (every prompt of the batch at once).
    Returns [n_layers, pos]: the mean logit difference of each patched run.
    """
    n_layers, n_pos = model.cfg.n_layers, tokens.shape[1]
    results = torch.zeros(n_layers, n_pos)
    for layer in tqdm(range(n_layers), desc="residual stream", leave=False):
        name = f"blocks.{layer}.hook_resid_pre"
        for pos in range(n_pos):
            def patch(resid, hook, pos=pos):
                resid = resid.clone()
                resid[:, pos] = source_cache[name][:, pos]
                return resid
            with torch.no_grad():
                logits = model.run_with_hooks(tokens, fwd_hooks=[(name, patch)])
            results[layer, pos] = logit_difference(logits, answer, wrong).mean()
    return results


def patch_layer_outputs(model, tokens: Tensor, source_cache, answer: Tensor, wrong: Tensor) -> Tensor:
    """Patch the output of every attention layer and every MLP, one position at a time.

    Arguments as in :func:`patch_residual_stream`. The outputs are ``blocks.{l}.hook_attn_out``
    and ``blocks.{l}.hook_mlp_out``, each [batch, pos, d_model].
    Returns [2, n_layers, pos]: index 0 holds the mean logit difference with the attention
    output of layer l at position p patched, index 1 the same for the MLP output.
    """
    n_layers, n_pos = model.cfg.n_layers, tokens.shape[1]
    results = torch.zeros(2, n_layers, n_pos)
    for kind, component in enumerate(["attn_out", "mlp_out"]):
        for layer in tqdm(range(n_layers), desc=component, leave=False):
            name = f"blocks.{layer}.hook_{component}"
            for pos in range(n_pos):
                def patch(out, hook, pos=pos):
                    out = out.clone()
                    out[:, pos] = source_cache[name][:, pos]
                    return out
                with torch.no_grad():
                    logits = model.run_with_hooks(tokens, fwd_hooks=[(name, patch)])
                results[kind, layer, pos] = logit_difference(logits, answer, wrong).mean()
    return results


def patch_head_outputs(model, tokens: Tensor, source_cache, answer: Tensor, wrong: Tensor) -> Tensor:
    """Patch every attention head's output, at all positions at once.

    Arguments as in :func:`patch_residual_stream`. A head's output is its slice of
    ``blocks.{l}.attn.hook_z`` ([batch, pos, n_heads, d_head]), before W_O mixes the heads.
    Returns [n_layers, n_heads]: the mean logit difference with head (l, h) patched.
    """
    results = torch.zeros(model.cfg.n_layers, model.cfg.n_heads)
    for layer in tqdm(range(model.cfg.n_layers), desc="heads", leave=False):
        name = f"blocks.{layer}.attn.hook_z"
        for head in range(model.cfg.n_heads):
            def patch(z, hook, head=head):
                z = z.clone()
                z[:, :, head] = source_cache[name][:, :, head]
                return z
            with torch.no_grad():
                logits = model.run_with_hooks(tokens, fwd_hooks=[(name, patch)])
            results[layer, head] = logit_difference(logits, answer, wrong).mean()
    return results


def patch_head_outputs_by_position(model, tokens: Tensor, source_cache, answer: Tensor, wrong: Tensor) -> Tensor:
    """Patch every attention head's output at one position at a time.

    As :func:`patch_head_outputs`, but only ``hook_z[:, p, h]`` is patched.
    Returns [n_layers, pos, n_heads] (TransformerLens's order).
    """
    n_layers, n_pos, n_heads = model.cfg.n_layers, tokens.shape[1], model.cfg.n_heads
    results = torch.zeros(n_layers, n_pos, n_heads)
    for layer in tqdm(range(n_layers), desc="heads by position", leave=False):
        name = f"blocks.{layer}.attn.hook_z"
        for pos in range(n_pos):
            for head in range(n_heads):
                def patch(z, hook, pos=pos, head=head):
                    z = z.clone()
                    z[:, pos, head] = source_cache[name][:, pos, head]
                    return z
                with torch.no_grad():
                    logits = model.run_with_hooks(tokens, fwd_hooks=[(name, patch)])
                results[layer, pos, head] = logit_difference(logits, answer, wrong).mean()
    return results


def causal_tracing(model, tokens: Tensor, subject_mask: Tensor, noise: Tensor, answer: Tensor) -> Tensor:
    """Causal tracing (Meng et al. 2022): corrupt the subject with noise, restore one state.

    model: a TransformerBridge. tokens: [batch, pos]. subject_mask: [batch, pos] bool, True on
    the subject's tokens. noise: [batch, pos, d_model], added to the token embeddings
    (``hook_embed``) where subject_mask is True, and nowhere else. answer: [batch] token ids.
    For every layer l and position p, run the noised model with ``blocks.{l}.hook_resid_pre``
    at position p restored to its value in a clean run (no noise) of the same tokens.
    Returns [n_layers, pos]: the mean probability of ``answer`` at the final position.
    """
    with torch.no_grad():
        _, clean_cache = model.run_with_cache(tokens, names_filter=lambda name: name.endswith("hook_resid_pre"))

    def add_noise(embed, hook):
        return embed + noise * subject_mask[..., None].to(embed.dtype)

    n_layers, n_pos = model.cfg.n_layers, tokens.shape[1]
    results = torch.zeros(n_layers, n_pos)
    for layer in tqdm(range(n_layers), desc="causal tracing", leave=False):
        name = f"blocks.{layer}.hook_resid_pre"
        for pos in range(n_pos):
            def restore(resid, hook, pos=pos):
                resid = resid.clone()
                resid[:, pos] = clean_cache[name][:, pos]
                return resid
            with torch.no_grad():
                logits = model.run_with_hooks(tokens, fwd_hooks=[("hook_embed", add_noise), (name, restore)])
            probs = logits[:, -1].softmax(dim=-1)
            results[layer, pos] = probs.gather(-1, answer[:, None]).mean()
    return results


def path_patch(model, tokens: Tensor, source_cache, sender: tuple, receiver: tuple | None, component: str,
               answer: Tensor, wrong: Tensor) -> Tensor:
    """Patch the path from one head to another head's input, or to the logits.

    model: a TransformerBridge. tokens: [batch, pos], the run to patch into; source_cache: a
    cache of the other run (as in :func:`patch_residual_stream`). sender: (layer, head).
    receiver: (layer, head) of a later layer, with component "q", "k" or "v" naming which of
    its inputs the path enters; or None for the path straight to the logits (component is
    then ignored). answer, wrong: [batch] token ids.
    1. Run ``tokens`` with the sender's ``hook_z`` slice taken from the source, and every other
       head's ``hook_z`` and every ``hook_mlp_out`` frozen at their values in a plain run of
       ``tokens``: the residual stream now differs from the plain run by the sender's change
       alone.
    2. Receiver None: the logits of that run are the answer. Otherwise record the receiver's
       ``blocks.{l}.attn.hook_{component}`` slice in it, and run ``tokens`` once more with
       only that slice patched in.
    Returns a 0-d tensor, the mean logit difference of the final run.
    """
    s_layer, s_head = sender
    writers = [f"blocks.{layer}.attn.hook_z" for layer in range(model.cfg.n_layers)]
    if not getattr(model.cfg, "attn_only", False):
        writers += [f"blocks.{layer}.hook_mlp_out" for layer in range(model.cfg.n_layers)]
    with torch.no_grad():
        _, plain = model.run_with_cache(tokens, names_filter=lambda name: name in writers)

    def frozen_at(name):
        def freeze(act, hook):
            act = plain[name].clone()
            if name == f"blocks.{s_layer}.attn.hook_z":
                act[:, :, s_head] = source_cache[name][:, :, s_head]
            return act
        return freeze

    frozen = [(name, frozen_at(name)) for name in writers]
    if receiver is None:
        with torch.no_grad():
            logits = model.run_with_hooks(tokens, fwd_hooks=frozen)
        return logit_difference(logits, answer, wrong).mean()
    r_layer, r_head = receiver
    name, stored = f"blocks.{r_layer}.attn.hook_{component}", {}

    def record(act, hook):
        stored["value"] = act[:, :, r_head].clone()

    def patch(act, hook):
        act = act.clone()
        act[:, :, r_head] = stored["value"]
        return act

    with torch.no_grad():
        model.run_with_hooks(tokens, fwd_hooks=frozen + [(name, record)])
        logits = model.run_with_hooks(tokens, fwd_hooks=[(name, patch)])
    return logit_difference(logits, answer, wrong).mean()

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
