"""Circuit discovery helpers for chapter 03 (not exercises): the graph of heads and MLPs, the
activations and gradients edge attribution needs, a model with a planted circuit, and plots.

The graph. Every component *writes* into the residual stream (the embedding, each head, each
MLP) and most also *read* from it (each head's query, key and value inputs, each MLP's input,
and finally the unembedding). An edge joins a writer to a later reader. Writers are numbered
``embed``, then layer by layer its heads and its MLP; readers layer by layer: every head's
``q``, ``k`` and ``v``, then the MLP, and last ``logits``.
"""
from __future__ import annotations

import tempfile
from contextlib import contextmanager

import torch
from torch import Tensor


# --- the graph ------------------------------------------------------------------------------


def graph_nodes(model) -> tuple[list[str], list[str]]:
    """Writer and reader names of ``model``'s graph, in the order edge tensors use.

    Writers: ``"embed"``, ``"A{layer}.{head}"``, ``"M{layer}"``. Readers: ``"A{layer}.{head}.q"``
    (and ``.k``, ``.v``), ``"M{layer}"``, ``"logits"``. Attention-only models have no MLP nodes.
    """
    cfg, writers, readers = model.cfg, ["embed"], []
    for layer in range(cfg.n_layers):
        heads = [f"A{layer}.{head}" for head in range(cfg.n_heads)]
        writers += heads
        readers += [f"{head}.{part}" for head in heads for part in "qkv"]
        if not cfg.attn_only:
            writers.append(f"M{layer}")
            readers.append(f"M{layer}")
    return writers, readers + ["logits"]


def _layer_of(name: str) -> float:
    """A node's layer; the embedding is layer -1 and the logits come after every layer."""
    if name == "embed":
        return -1
    if name == "logits":
        return float("inf")
    return int(name[1:].split(".")[0])


def edge_mask(model) -> Tensor:
    """[n_writers, n_readers] bool: True where the writer comes before the reader.

    A head reads what earlier layers wrote; an MLP also reads its own layer's heads (blocks
    that run attention, then the MLP); the logits read every writer.
    """
    writers, readers = graph_nodes(model)
    mask = torch.zeros(len(writers), len(readers), dtype=torch.bool)
    for w, writer in enumerate(writers):
        for r, reader in enumerate(readers):
            before = _layer_of(writer) < _layer_of(reader)
            same_layer_into_mlp = (reader.startswith("M") and writer.startswith("A")
                                   and _layer_of(writer) == _layer_of(reader))
            mask[w, r] = before or same_layer_into_mlp
    return mask


def reader_owner(model) -> list[int]:
    """For each reader, the index of the writer whose input it is (-1 for the logits)."""
    writers, readers = graph_nodes(model)
    return [writers.index(r.rsplit(".", 1)[0] if r.startswith("A") else r) if r != "logits" else -1
            for r in readers]


@contextmanager
def per_head_hooks(model):
    """Turn on the hook points edges need (each head's own output and its own q/k/v input,
    the MLP input), and restore the model's settings afterwards."""
    cfg = model.cfg
    saved = cfg.use_attn_result, cfg.use_split_qkv_input, getattr(cfg, "use_hook_mlp_in", False)
    model.set_use_attn_result(True)
    model.set_use_split_qkv_input(True)
    model.set_use_hook_mlp_in(True)
    try:
        yield
    finally:
        model.set_use_attn_result(saved[0])
        model.set_use_split_qkv_input(saved[1])
        model.set_use_hook_mlp_in(saved[2])


def mean_logit_difference(logits: Tensor, answer: Tensor, wrong: Tensor) -> Tensor:
    """Mean over prompts of logit(answer) - logit(wrong) at the final position."""
    last = logits[:, -1]
    rows = torch.arange(len(last))
    return (last[rows, answer] - last[rows, wrong]).mean()


def _writer_outputs(model, cache) -> Tensor:
    """[n_writers, batch, pos, d_model]: what each writer added to the residual stream."""
    outputs = [cache["hook_embed"] + (cache["hook_pos_embed"] if "hook_pos_embed" in cache else 0)]
    for layer in range(model.cfg.n_layers):
        outputs += list(cache[f"blocks.{layer}.attn.hook_result"].unbind(2))
        if not model.cfg.attn_only:
            outputs.append(cache[f"blocks.{layer}.hook_mlp_out"])
    return torch.stack(outputs)


def _reader_hooks(model) -> list[str]:
    names = []
    for layer in range(model.cfg.n_layers):
        names += [f"blocks.{layer}.attn.hook_{part}_input" for part in "qkv"]
        if not model.cfg.attn_only:
            names.append(f"blocks.{layer}.hook_mlp_in")
    return names + [f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"]


def _reader_gradients(model, grads: dict) -> Tensor:
    """[n_readers, batch, pos, d_model] from the gradients at the reader hooks."""
    out = []
    for layer in range(model.cfg.n_layers):
        q, k, v = (grads[f"blocks.{layer}.attn.hook_{part}_input"] for part in "qkv")
        for head in range(model.cfg.n_heads):
            out += [q[:, :, head], k[:, :, head], v[:, :, head]]
        if not model.cfg.attn_only:
            out.append(grads[f"blocks.{layer}.hook_mlp_in"])
    return torch.stack(out + [grads[f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"]])


def edge_inputs(model, clean_tokens: Tensor, corrupted_tokens: Tensor, answer: Tensor,
                wrong: Tensor) -> tuple[Tensor, Tensor]:
    """What edge attribution patching needs, from two forward passes and one backward pass.

    Returns ``(writer_deltas, reader_grads)``: each writer's clean minus corrupted output,
    [n_writers, batch, pos, d_model], and the gradient of :func:`mean_logit_difference` (times the
    batch size, so each prompt counts as its own metric) with respect to each reader's input on
    the corrupted run, [n_readers, batch, pos, d_model].
    """
    writer_hooks = ["hook_embed", "hook_pos_embed"] + [
        f"blocks.{layer}.{name}" for layer in range(model.cfg.n_layers)
        for name in ("attn.hook_result", "hook_mlp_out")]
    keep = lambda name: name in writer_hooks  # noqa: E731
    grads = {}

    def keep_gradient(name):  # by our name: the hook may report an alias of it
        return lambda grad, hook: grads.__setitem__(name, grad.detach().clone())

    bwd = [(name, keep_gradient(name)) for name in _reader_hooks(model)]
    with per_head_hooks(model):
        with torch.no_grad():
            _, clean = model.run_with_cache(clean_tokens, names_filter=keep)
        with model.hooks(bwd_hooks=bwd):
            logits, corrupted = model.run_with_cache(corrupted_tokens, names_filter=keep)
            (mean_logit_difference(logits, answer, wrong) * len(answer)).backward()
        model.zero_grad(set_to_none=True)
        deltas = _writer_outputs(model, clean) - _writer_outputs(model, corrupted).detach()
        return deltas.detach(), _reader_gradients(model, grads)


# --- a model whose circuit is known ---------------------------------------------------------

PLANTED_VOCAB = 10     # tokens PLANTED_FIRST .. PLANTED_FIRST + PLANTED_VOCAB - 1 carry the task
PLANTED_FIRST = 10
PLANTED_EDGES = [("embed", "A0.0.v"), ("A0.0", "A1.0.k"), ("embed", "A1.0.q"), ("embed", "A1.0.v"),
                 ("A1.0", "logits")]
# Edge scores on planted_batch: planted edges 0.18 (0.0 -> 1.0.k) to 7 (1.0 -> logits); every
# other edge at most 0.03 (the LayerNorms' small mixing), so this threshold separates them.
PLANTED_THRESHOLD = 0.1


def planted_induction_model(n_ctx: int = 24):
    """A 2-layer GPT-2-shaped model whose weights are set by hand to one known circuit.

    Head 0.0 is a previous-token head: its query and key read the position, its value reads
    the token and writes it into a "previous token" subspace. Head 1.0 is an induction head:
    its key reads that subspace (K-composition with 0.0), its query and value read the
    current token, and its output is the only thing the unembedding reads. Every other head
    and both MLPs are zero. The residual stream is a sum of one-hot blocks (token, previous
    token, output, position) plus two constant "anchor" coordinates, so each LayerNorm only
    centres and rescales by nearly the same amount everywhere. So the circuit's edges are
    ``PLANTED_EDGES`` and nothing else: ``embed -> 0.0.v``, ``0.0 -> 1.0.k``, ``embed -> 1.0.q``,
    ``embed -> 1.0.v`` and ``1.0 -> logits``.
    """
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from utils.models import DEFAULT_MODEL, MODELS_DIR, load_model

    V, n_heads, size = PLANTED_VOCAB, 2, 3 * PLANTED_VOCAB + n_ctx + 2
    d_model = size + size % n_heads
    tok, prev, out, pos, anchor = 0, V, 2 * V, 3 * V, 3 * V + n_ctx
    tokenizer = AutoTokenizer.from_pretrained(str(MODELS_DIR / DEFAULT_MODEL))
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=n_ctx, n_embd=d_model, n_layer=2, n_head=n_heads,
                        tie_word_embeddings=False, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    model = GPT2LMHeadModel(config)
    for param in model.parameters():
        param.data.zero_()
    t = model.transformer
    ids = torch.arange(V)
    t.wte.weight.data[PLANTED_FIRST + ids, tok + ids] = 1.0
    t.wte.weight.data[:, anchor:anchor + 2] = torch.tensor([8.0, -8.0])
    t.wpe.weight.data[torch.arange(n_ctx), pos + torch.arange(n_ctx)] = 1.0
    scale = (128.0 / d_model) ** 0.5  # the LayerNorm's divisor, about: the anchors dominate
    for ln in (t.h[0].ln_1, t.h[0].ln_2, t.h[1].ln_1, t.h[1].ln_2, t.ln_f):
        ln.weight.data.fill_(scale)
    d_head = d_model // n_heads
    _set_head(t.h[0].attn, d_model, d_head, q=(pos + torch.arange(1, n_ctx), torch.arange(1, n_ctx)),
              k=(pos + torch.arange(n_ctx - 1), torch.arange(1, n_ctx)), v=(tok + ids, ids),
              o=(ids, prev + ids), qk_gain=30.0)
    _set_head(t.h[1].attn, d_model, d_head, q=(tok + ids, ids), k=(prev + ids, ids), v=(tok + ids, ids),
              o=(ids, out + ids), qk_gain=40.0)
    model.lm_head.weight.data[PLANTED_FIRST + ids, out + ids] = 4.0
    folder = tempfile.mkdtemp(prefix="planted-")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return load_model(folder)


def _set_head(attn, d_model: int, d_head: int, *, q, k, v, o, qk_gain: float) -> None:
    """Head 0 of a GPT-2 attention layer: each of q, k, v maps residual rows to head columns,
    o maps head columns to residual columns (``c_attn`` holds [q | k | v] for all heads)."""
    weight = attn.c_attn.weight.data                     # [d_model, 3 * d_model]
    for block, (rows, cols), gain in ((0, q, qk_gain), (1, k, 1.0), (2, v, 1.0)):
        weight[rows, block * d_model + cols] = gain
    attn.c_proj.weight.data[o[0], o[1]] = 1.0            # [d_model (head 0 first), d_model]


def planted_batch(n: int, half_len: int = 8, seed: int = 0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Clean and corrupted batches for the planted model, and the answers and wrong answers.

    A clean row is ``half_len`` distinct task tokens followed by its first ``half_len - 2``
    tokens again, so the next token is the ``half_len - 1``-th one: only induction predicts it.
    The corrupted row is another such sequence; its answer is the ``wrong`` token.
    """
    g = torch.Generator().manual_seed(seed)
    rows = [torch.randperm(PLANTED_VOCAB, generator=g)[:half_len] + PLANTED_FIRST for _ in range(2 * n)]
    seqs = torch.stack([torch.cat([r, r[:half_len - 2]]) for r in rows])
    answers = torch.stack([r[half_len - 2] for r in rows])
    return seqs[:n], seqs[n:], answers[:n], answers[n:]


# --- from edges to components, sweeps and figures --------------------------------------------


def circuit_components(model, circuit: Tensor) -> tuple[list, list]:
    """The heads [(layer, head)] and MLP layers that send at least one edge of ``circuit``
    ([n_writers, n_readers] bool); the embedding is always there and is not listed."""
    writers, _ = graph_nodes(model)
    senders = [writers[w] for w in circuit.any(dim=1).nonzero()[:, 0].tolist()]
    heads = [tuple(int(x) for x in s[1:].split(".")) for s in senders if s.startswith("A")]
    return heads, [int(s[1:]) for s in senders if s.startswith("M")]


def threshold_sweep(model, data, scores: Tensor, reference: Tensor, faithfulness, circuit_from_scores,
                    n_thresholds: int = 10) -> list[dict]:
    """For thresholds from the largest |score| down to a thousandth of it: the circuit's edges,
    heads and MLPs, and the share of the logit difference it keeps (mean over prompts, divided
    by the full model's) with its top-1 accuracy. ``faithfulness`` and ``circuit_from_scores``
    are the chapter's exercises; ``data`` has clean, answer and wrong."""
    top = float(scores.abs().max())
    every = [(layer, head) for layer in range(model.cfg.n_layers) for head in range(model.cfg.n_heads)]
    full, _ = faithfulness(model, data.clean, data.answer, data.wrong, reference, every, list(range(model.cfg.n_layers)))
    rows = []
    for threshold in torch.logspace(0, -3, n_thresholds).tolist():
        circuit = circuit_from_scores(scores, threshold * top, reader_owner(model))
        heads, mlps = circuit_components(model, circuit)
        kept, correct = faithfulness(model, data.clean, data.answer, data.wrong, reference, heads, mlps)
        rows.append(dict(threshold=threshold * top, edges=int(circuit.sum()), heads=heads, mlps=mlps,
                         kept=float(kept.mean() / full.mean()), top1=float(correct.mean())))
    return rows


def smallest_faithful(rows: list[dict], top1: bool = True, level: float = 0.8) -> dict:
    """The first (smallest) circuit of a sweep that keeps ``level`` of the logit difference and,
    if ``top1``, has top-1 accuracy ``level``; the largest one if none does."""
    return next((r for r in rows if r["kept"] >= level and (r["top1"] >= level or not top1)), rows[-1])


def sweep_figure(sweeps: dict, without_top1: tuple = ()):
    """Share of the logit difference kept and top-1 accuracy against the number of edges, one
    line per task (``sweeps``: task name -> rows of :func:`threshold_sweep`); no top-1 line for
    the tasks in ``without_top1`` (greater-than: many answers are right, not only the one)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for task, rows in sweeps.items():
        edges = [r["edges"] for r in rows]
        fig.add_scatter(x=edges, y=[r["kept"] for r in rows], mode="lines+markers", name=f"{task}: logit diff. kept")
        if task not in without_top1:
            fig.add_scatter(x=edges, y=[r["top1"] for r in rows], mode="lines+markers", line_dash="dot",
                            name=f"{task}: top-1")
    fig.update_layout(title="Circuits found by edge attribution: size against faithfulness", xaxis_type="log",
                      xaxis_title="edges kept", yaxis_title="share kept / accuracy")
    return fig
