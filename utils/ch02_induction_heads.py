"""Helpers for chapter 02 (induction heads): a tiny attention-only transformer that trains live on
a CPU, its training data, pattern collection from a TransformerBridge, and the chapter's plots.

None of this is graded; the graded exercises live in the notebook (and, for reference, in
``solutions/ch02_induction_heads.py``).
"""
from __future__ import annotations

import math
import time
from typing import Callable

import plotly.graph_objects as go
import torch
import torch.nn.functional as F
from plotly.subplots import make_subplots
from torch import Tensor, nn

# ---------------------------------------------------------------------------------------------
# Attention patterns and head scores from a TransformerBridge
# ---------------------------------------------------------------------------------------------


def all_patterns(model, tokens: Tensor) -> tuple[Tensor, list[Tensor]]:
    """Run ``model`` on ``tokens`` and return (logits, [pattern of layer l]) with each pattern
    shaped [batch, n_heads, query_pos, key_pos]. Caches only the patterns, to save memory."""
    names = {f"blocks.{layer}.attn.hook_pattern" for layer in range(model.cfg.n_layers)}
    with torch.no_grad():
        logits, cache = model.run_with_cache(tokens, names_filter=lambda name: name in names)
    return logits, [cache["pattern", layer] for layer in range(model.cfg.n_layers)]


def score_heads(patterns: list[Tensor], score: Callable[[Tensor], Tensor]) -> Tensor:
    """Apply a per-layer head score (pattern -> [n_heads]) to every layer: [n_layers, n_heads]."""
    return torch.stack([score(p) for p in patterns])


def top_heads(scores: Tensor, k: int = 3, layers=None) -> list[tuple[int, int, float]]:
    """The ``k`` highest-scoring heads as (layer, head, score), optionally only in ``layers``."""
    scores = scores.detach().float().clone()
    if layers is not None:
        keep = torch.zeros(scores.shape[0], dtype=torch.bool)
        keep[list(layers)] = True
        scores[~keep] = float("-inf")
    flat = scores.flatten().topk(min(k, scores.numel()))
    n_heads = scores.shape[-1]
    return [(int(i) // n_heads, int(i) % n_heads, round(float(v), 3)) for v, i in zip(flat.values, flat.indices)]


def word_tokens(model, how_many: int = 2000) -> Tensor:
    """Ids of ordinary tokens (no special tokens) that tokenize back to themselves after a
    decode, so that a string made from them gives the same ids again (TransformerLens's
    ``detect_head`` takes strings)."""
    tokenizer = model.tokenizer
    special = set(tokenizer.all_special_ids)
    keep = []
    for i in range(min(model.cfg.d_vocab, len(tokenizer))):
        if i in special:
            continue
        text = tokenizer.decode([i])
        if text.isalnum() and tokenizer.encode(" " + text, add_special_tokens=False) == [i]:
            keep.append(i)
            if len(keep) >= how_many:
                break
    return torch.tensor(keep)


# ---------------------------------------------------------------------------------------------
# A tiny attention-only transformer you can train on a CPU in under a minute
# ---------------------------------------------------------------------------------------------


class Attention(nn.Module):
    """Multi-head causal self-attention with TransformerLens-shaped weights:
    W_Q, W_K, W_V [n_heads, d_model, d_head] and W_O [n_heads, d_head, d_model]."""

    def __init__(self, d_model: int, n_heads: int, d_head: int):
        super().__init__()
        self.W_Q = nn.Parameter(torch.randn(n_heads, d_model, d_head) / math.sqrt(d_model))
        self.W_K = nn.Parameter(torch.randn(n_heads, d_model, d_head) / math.sqrt(d_model))
        self.W_V = nn.Parameter(torch.randn(n_heads, d_model, d_head) / math.sqrt(d_model))
        self.W_O = nn.Parameter(torch.randn(n_heads, d_head, d_model) / math.sqrt(d_head * n_heads))
        self.d_head = d_head

    def forward(self, x: Tensor, qk_input: Tensor) -> tuple[Tensor, Tensor]:
        q = torch.einsum("bpd,hde->bhpe", qk_input, self.W_Q)
        k = torch.einsum("bpd,hde->bhpe", qk_input, self.W_K)
        v = torch.einsum("bpd,hde->bhpe", x, self.W_V)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.d_head)
        n = x.shape[1]
        future = torch.ones(n, n, dtype=torch.bool, device=x.device).triu(1)
        pattern = scores.masked_fill(future, float("-inf")).softmax(-1)
        return torch.einsum("bhpe,hed->bpd", pattern @ v, self.W_O), pattern


class AttnOnlyTransformer(nn.Module):
    """An attention-only transformer (no MLPs) with LayerNorm before each attention layer.

    Positions enter only the queries and keys (the "shortformer" choice): the residual stream
    carries tokens and what heads moved, never raw positions, so a head cannot solve a copying
    task by positional bookkeeping and the model must build the induction circuit.
    ``forward`` returns (logits, [pattern of layer l, each [batch, head, query, key]]).
    """

    def __init__(self, d_vocab: int, n_ctx: int, d_model: int = 64, n_heads: int = 4, n_layers: int = 2):
        super().__init__()
        self.cfg = dict(d_vocab=d_vocab, n_ctx=n_ctx, d_model=d_model, n_heads=n_heads, n_layers=n_layers)
        self.embed = nn.Embedding(d_vocab, d_model)
        self.pos_embed = nn.Embedding(n_ctx, d_model)
        nn.init.normal_(self.embed.weight, std=0.1)
        nn.init.normal_(self.pos_embed.weight, std=0.1)
        self.ln = nn.ModuleList([nn.LayerNorm(d_model) for _ in range(n_layers)])
        self.attn = nn.ModuleList([Attention(d_model, n_heads, d_model // n_heads) for _ in range(n_layers)])
        self.ln_final = nn.LayerNorm(d_model)
        self.unembed = nn.Linear(d_model, d_vocab, bias=False)

    def forward(self, tokens: Tensor) -> tuple[Tensor, list[Tensor]]:
        x = self.embed(tokens)
        pos = self.pos_embed(torch.arange(tokens.shape[1], device=tokens.device))
        patterns = []
        for ln, attn in zip(self.ln, self.attn):
            out, pattern = attn(ln(x), ln(x) + pos)
            x = x + out
            patterns.append(pattern)
        return self.unembed(self.ln_final(x)), patterns


def induction_training_batch(batch: int, seq_len: int, d_vocab: int, generator: torch.Generator) -> Tensor:
    """Training data that makes real induction necessary.

    Each row is uniform random tokens (ids 1..d_vocab-1 after a BOS of 0) in which one span of
    random length (seq_len/4 to seq_len/2) is copied from a random earlier place to a random
    later place. Bigram statistics are useless (tokens are uniform), and the distance between
    the copy and its source changes from row to row, so no fixed positional offset predicts the
    copy: the model has to find the earlier occurrence of the current token and read what came
    next.
    """
    tokens = torch.randint(1, d_vocab, (batch, seq_len), generator=generator)
    tokens[:, 0] = 0
    for row in range(batch):
        n = int(torch.randint(seq_len // 4, seq_len // 2, (1,), generator=generator))
        source = int(torch.randint(1, seq_len - 2 * n + 1, (1,), generator=generator))
        target = int(torch.randint(source + n, seq_len - n + 1, (1,), generator=generator))
        tokens[row, target:target + n] = tokens[row, source:source + n]
    return tokens


def train_induction_model(induction_score: Callable, previous_token_score: Callable, eval_tokens: Tensor, *,
                          steps: int = 700, eval_every: int = 25, batch: int = 64, seq_len: int = 32,
                          d_vocab: int = 64, lr: float = 3e-3, seed: int = 0, progress: bool = True):
    """Train an :class:`AttnOnlyTransformer` on :func:`induction_training_batch` and record, every
    ``eval_every`` steps, the loss on the repeated half of ``eval_tokens`` ([batch, 1 + 2n], BOS
    then n tokens twice) and every head's induction and previous-token scores, computed with the
    functions you pass (yours from the exercises).

    Returns (model, history) with history keys ``step``, ``train_loss``, ``repeat_loss``,
    ``induction`` [n_evals, n_layers, n_heads], ``previous`` (same shape) and ``seconds``.
    """
    from tqdm.auto import tqdm

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the matrices are tiny: extra threads cost more than they give
    try:
        return _train(induction_score, previous_token_score, eval_tokens, steps, eval_every, batch, seq_len,
                      d_vocab, lr, seed, progress, tqdm)
    finally:
        torch.set_num_threads(threads)


def _train(induction_score, previous_token_score, eval_tokens, steps, eval_every, batch, seq_len, d_vocab, lr,
           seed, progress, tqdm):
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = AttnOnlyTransformer(d_vocab, seq_len)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    half = (eval_tokens.shape[1] - 1) // 2
    history = {"step": [], "train_loss": [], "repeat_loss": [], "induction": [], "previous": []}
    started = time.perf_counter()
    bar = tqdm(range(steps + 1), desc="training", disable=not progress)
    train_loss = float("nan")
    for step in bar:
        if step % eval_every == 0:
            model.eval()
            with torch.no_grad():
                logits, patterns = model(eval_tokens)
                losses = -logits[:, :-1].log_softmax(-1).gather(-1, eval_tokens[:, 1:, None])[..., 0]
                history["step"].append(step)
                history["train_loss"].append(train_loss)
                history["repeat_loss"].append(losses[:, half + 1:].mean().item())
                history["induction"].append(torch.stack([induction_score(p, eval_tokens) for p in patterns]))
                history["previous"].append(torch.stack([previous_token_score(p) for p in patterns]))
            bar.set_postfix(repeat_loss=f"{history['repeat_loss'][-1]:.2f}",
                            induction=f"{history['induction'][-1].max():.2f}")
            model.train()
        if step == steps:
            break
        tokens = induction_training_batch(batch, seq_len, d_vocab, generator)
        logits, _ = model(tokens)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, d_vocab), tokens[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        train_loss = loss.item()
    history["induction"] = torch.stack(history["induction"])
    history["previous"] = torch.stack(history["previous"])
    history["seconds"] = time.perf_counter() - started
    model.eval()
    return model, history


def phase_change_step(steps, induction, threshold: float | None = None) -> int | None:
    """The first step at which the best head's induction score exceeds ``threshold``; by default
    halfway between its lowest and highest values. None when it never does, or when the score
    never rises by 0.1 or more (no phase change to speak of)."""
    induction = torch.as_tensor(induction, dtype=torch.float)
    best = induction.flatten(1).max(-1).values if induction.dim() > 1 else induction
    if threshold is None:
        if best.max() - best.min() < 0.1:
            return None
        threshold = float(best.min() + best.max()) / 2
    for step, value in zip(steps, best.tolist()):
        if value > threshold:
            return int(step)
    return None


# ---------------------------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------------------------


def head_heatmap(scores: Tensor, title: str, zmax: float | None = None, colorscale: str = "Blues") -> go.Figure:
    """A [n_layers, n_heads] heatmap of one score per head."""
    scores = scores.detach().float().cpu()
    fig = go.Figure(go.Heatmap(z=scores.numpy(), colorscale=colorscale, zmin=0 if zmax else None, zmax=zmax,
                               x=[str(h) for h in range(scores.shape[1])], y=[str(l) for l in range(scores.shape[0])],
                               hovertemplate="layer %{y}, head %{x}: %{z:.3f}<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="head", yaxis_title="layer", width=520, height=320,
                      yaxis=dict(autorange="reversed"), margin=dict(t=50, b=40, l=50, r=20))
    return fig


def pattern_figure(pattern: Tensor, labels: list[str], title: str) -> go.Figure:
    """One head's attention pattern [query, key] with token labels."""
    ticks = [f"{i}:{t}" for i, t in enumerate(labels)]
    fig = go.Figure(go.Heatmap(z=pattern.detach().float().cpu().numpy(), x=ticks, y=ticks, colorscale="Blues",
                               zmin=0, zmax=1, hovertemplate="query %{y}<br>key %{x}<br>%{z:.2f}<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="key", yaxis_title="query", width=560, height=520,
                      yaxis=dict(autorange="reversed"), margin=dict(t=50, b=40, l=60, r=20))
    return fig


def phase_change_figure(steps, repeat_loss, best_induction, title: str, train_loss=None,
                        x_title: str = "training step") -> go.Figure:
    """Loss on the repeat (left axis) and the best induction score (right axis) against step."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=list(steps), y=list(repeat_loss), name="loss on the repeat", mode="lines+markers"),
                  secondary_y=False)
    if train_loss is not None:
        fig.add_trace(go.Scatter(x=list(steps), y=list(train_loss), name="training loss", mode="lines",
                                 line=dict(dash="dot")), secondary_y=False)
    fig.add_trace(go.Scatter(x=list(steps), y=list(best_induction), name="best induction score",
                             mode="lines+markers"), secondary_y=True)
    fig.update_yaxes(title_text="loss (nats)", secondary_y=False, rangemode="tozero")
    fig.update_yaxes(title_text="induction score", range=[0, 1], secondary_y=True)
    fig.update_layout(title=title, xaxis_title=x_title, width=720, height=380, margin=dict(t=50, b=40))
    return fig


def per_position_loss_figure(losses: Tensor, half: int, title: str) -> go.Figure:
    """Mean loss at each predicted position, with the start of the repeat marked."""
    mean = losses.detach().float().mean(0).cpu()
    fig = go.Figure(go.Scatter(x=list(range(1, len(mean) + 1)), y=mean.tolist(), mode="lines+markers"))
    fig.add_vline(x=half + 0.5, line_dash="dash", annotation_text="repeat starts")
    fig.update_layout(title=title, xaxis_title="position of the predicted token", yaxis_title="loss (nats)",
                      width=720, height=340, margin=dict(t=50, b=40))
    return fig


# ---------------------------------------------------------------------------------------------
# Saved training checkpoints of an attention-only model
# ---------------------------------------------------------------------------------------------


def checkpoint_steps(name) -> list[int]:
    """Training steps at which the bundled model ``name`` kept a checkpoint; [] for hub models
    and for models saved without checkpoints."""
    from utils import models

    try:
        return list(models.checkpoints(name))
    except Exception:
        return []


def load_checkpoint(name, step: int):
    """The weights of ``name`` at training step ``step``, as a TransformerBridge."""
    from utils.models import load_model

    return load_model(name, checkpoint=step)


def training_log(name) -> dict | None:
    """The loss curve a bundled model was trained with (``training_log.json`` beside it), as
    lists keyed ``step``, ``train_loss``, ``repeat_loss`` and ``induction``; None if absent."""
    import json

    from utils.models import MODELS_DIR

    path = MODELS_DIR / str(name) / "training_log.json"
    if not path.is_file():
        return None
    log = json.loads(path.read_text())["log"]
    pick = lambda key: [entry.get(key) for entry in log]
    return {"step": pick("step"), "train_loss": pick("train_loss"), "repeat_loss": pick("induction_loss_repeat"),
            "induction": pick("induction_score_best")}
