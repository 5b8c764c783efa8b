"""Residual-stream patching done a second time, with pyvene instead of TransformerLens hooks.

pyvene (Wu et al. 2024) describes an intervention as data: which module ("block_input" of layer
3), which unit (a position) and what to do there (swap in the activation of a source run). It
wraps a plain ``transformers`` model, so the same description works on any architecture it
knows, and interventions can be trained (distributed alignment search) as well as swapped.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from tqdm.auto import tqdm


@torch.no_grad()
def patch_residual_with_pyvene(hf_model, corrupted_tokens: Tensor, clean_tokens: Tensor,
                               metric: Callable[[Tensor], Tensor]) -> Tensor:
    """Denoising patch of the residual stream entering each block, at each position.

    hf_model: a ``transformers`` causal LM (``utils.models.load_hf_model``).
    corrupted_tokens, clean_tokens: [batch, pos] token ids, ``<bos>`` first, aligned position by
    position. metric: logits [batch, pos, d_vocab] -> a scalar, as for
    ``transformer_lens.patching``.
    Returns [n_layers, pos]: entry (L, p) is the metric of the corrupted run with the clean
    residual stream written in at the input of block L, position p (TransformerLens's
    ``blocks.L.hook_resid_pre``), for every prompt of the batch at once.
    """
    import pyvene as pv

    if corrupted_tokens.shape != clean_tokens.shape:
        raise ValueError(f"corrupted {list(corrupted_tokens.shape)} and clean {list(clean_tokens.shape)} "
                         "token batches must have the same shape, position by position")
    batch, n_pos = clean_tokens.shape
    n_layers = hf_model.config.num_hidden_layers
    # One run per layer: each prompt repeated once per position, copy p patched at position p.
    base = {"input_ids": corrupted_tokens.repeat_interleave(n_pos, dim=0)}
    source = {"input_ids": clean_tokens.repeat_interleave(n_pos, dim=0)}
    where = [[[copy % n_pos] for copy in range(batch * n_pos)]]  # one intervention; a position per copy
    results = torch.zeros(n_layers, n_pos)
    for layer in tqdm(range(n_layers), desc="pyvene: layers"):
        model = pv.IntervenableModel({"layer": layer, "component": "block_input", "unit": "pos"}, model=hf_model)
        _, patched = model(base=base, sources=[source], unit_locations={"sources->base": (where, where)})
        logits = patched.logits.unflatten(0, (batch, n_pos))
        results[layer] = torch.stack([metric(logits[:, p]) for p in range(n_pos)])
    return results
