"""Helpers for chapter 01 (circuits and the residual stream): prompts, attention figures and an
attention explorer. Nothing here is graded; the exercises live in the notebook.

Everything works on any model that ``utils.models.load_model`` returns (the course's word-level
models and GPT-2 alike): tokens come from ``model.to_tokens`` and labels from
``model.to_str_tokens``, never from a particular vocabulary.
"""
from __future__ import annotations

import torch
from torch import Tensor

from utils.plots import explorer, redrawn_figure, stepped_figure

# Ten prompts for the text's exercise 1: a mix of sentence kinds the small world knows
# (stories, indirect objects, facts, years, opinions, a repeated list) and plain English.
TEN_PROMPTS = [
    "When Mary and John went to the store, John gave a drink to Mary.",
    "The capital of France is Paris. The capital of Germany is Berlin.",
    "The war lasted from the year 1732 to the year 1745.",
    "I watched the film. It was wonderful. Overall I thought it was good.",
    "Alice wrote a list : red , dog , lamp , Oslo . Later Alice read the list again : red , dog , lamp , Oslo .",
    "After the morning, Sarah and Tom walked to the park and Tom gave a book to Sarah.",
    "People in Spain speak Spanish, and people in Italy speak Italian.",
    "The cake was awful. In short, it was bad.",
    "It was a sunny day in the village. The farmer had a dog and a cat.",
    "Peter went to the library, then Peter went to the museum, then Peter went home.",
]


def text_batch(model, n: int, length: int, seed: int = 0, split: str = "train") -> Tensor:
    """``n`` token sequences of exactly ``length`` tokens (BOS first), cut from the start of
    documents of the small world's text (``utils.world.generate_text``), tokenized by ``model``.

    Returns a [n, length] tensor of token ids. Works for any tokenizer: documents that are too
    short for ``length`` tokens are skipped.
    """
    from utils.world import generate_text

    rows, start = [], 0
    while len(rows) < n:
        for document in generate_text(4 * n, seed=seed * 1000 + start, split=split):
            tokens = model.to_tokens(document)[0]
            if tokens.shape[0] >= length:
                rows.append(tokens[:length])
            if len(rows) == n:
                break
        start += 1
    return torch.stack(rows)


def answer_token(model, prompt: str, answer: str) -> int:
    """The id of the first token of ``answer`` when it follows ``prompt`` (tokenizer-agnostic:
    `" Mary"` is one token for GPT-2 and for the course's word-level models alike)."""
    n_prompt = model.to_tokens(prompt).shape[1]
    return int(model.to_tokens(prompt + answer)[0, n_prompt])


def _labels(model, tokens: Tensor) -> list[str]:
    """Token strings, made unique for plotly axes (a repeated word gets its position)."""
    return [f"{i}: {s}" for i, s in enumerate(model.to_str_tokens(tokens))]


def plot_attention(model, text: str | Tensor, layer: int, head: int, title: str | None = None):
    """A heatmap of one head's attention pattern on ``text`` (query rows, key columns)."""
    import plotly.express as px

    tokens = model.to_tokens(text) if isinstance(text, str) else text.reshape(1, -1)
    name = f"blocks.{layer}.attn.hook_pattern"
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=name)
    labels = _labels(model, tokens[0])
    fig = px.imshow(cache[name][0, head].cpu(), x=labels, y=labels, color_continuous_scale="Blues",
                    zmin=0, zmax=1, labels=dict(x="key (attended to)", y="query (attending)", color="attention"),
                    title=title or f"Head L{layer}H{head}")
    fig.update_layout(height=420, width=480, margin=dict(l=10, r=10, t=40, b=10))
    fig.update_xaxes(tickangle=-60)
    return fig


def plot_head_on_prompts(model, prompts: list[str], layer: int, head: int, cols: int = 5):
    """One head's attention pattern on each prompt, side by side (the text's exercise 1)."""
    from plotly.subplots import make_subplots
    import plotly.graph_objects as go

    rows = (len(prompts) + cols - 1) // cols
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[f"prompt {i}" for i in range(len(prompts))],
                        horizontal_spacing=0.02, vertical_spacing=0.08)
    name = f"blocks.{layer}.attn.hook_pattern"
    for i, prompt in enumerate(prompts):
        tokens = model.to_tokens(prompt)
        with torch.no_grad():
            _, cache = model.run_with_cache(tokens, names_filter=name)
        labels = _labels(model, tokens[0])
        fig.add_trace(go.Heatmap(z=cache[name][0, head].cpu().numpy(), x=labels, y=labels, zmin=0, zmax=1,
                                 colorscale="Blues", showscale=i == 0,
                                 hovertemplate="query %{y}<br>key %{x}<br>attention %{z:.2f}<extra></extra>"),
                      row=i // cols + 1, col=i % cols + 1)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, autorange="reversed")
    fig.update_layout(height=260 * rows, title=f"Head L{layer}H{head} on {len(prompts)} prompts (hover for tokens)",
                      margin=dict(l=10, r=10, t=60, b=10))
    return fig


def plot_head_scores(scores: Tensor, title: str, zmax: float | None = None, diverging: bool = False):
    """A [n_layers, n_heads] heatmap of one number per head."""
    import plotly.express as px

    scores = scores.detach().cpu()
    options = dict(color_continuous_scale="RdBu", color_continuous_midpoint=0.0) if diverging else \
        dict(color_continuous_scale="Blues", zmin=0, zmax=zmax if zmax is not None else 1)
    fig = px.imshow(scores, labels=dict(x="head", y="layer", color="score"), title=title, text_auto=".2f",
                    aspect="auto", **options)
    fig.update_layout(height=120 + 40 * scores.shape[0], margin=dict(l=10, r=10, t=40, b=10))
    return fig


def top_heads(scores: Tensor, k: int = 3) -> list[tuple[int, int, float]]:
    """The ``k`` highest-scoring heads as (layer, head, score)."""
    flat = scores.flatten()
    values, indices = flat.topk(min(k, flat.numel()))
    n_heads = scores.shape[1]
    return [(int(i) // n_heads, int(i) % n_heads, round(float(v), 3)) for v, i in zip(values, indices)]


def attention_explorer(model, text: str = TEN_PROMPTS[0], layer: int = 0, head: int = 0):
    """An interactive explorer: type any text, pick a layer and a head, see the pattern.

    Returns an ipywidgets box. Where no kernel runs (the book), its static twin shows instead:
    every head's pattern on ``text`` in one plotly figure, with a slider over the heads.
    """
    import ipywidgets as widgets

    text_box = widgets.Text(value=text, description="text", layout=widgets.Layout(width="95%"))
    layer_slider = widgets.IntSlider(value=layer, min=0, max=model.cfg.n_layers - 1, description="layer")
    head_slider = widgets.IntSlider(value=head, min=0, max=model.cfg.n_heads - 1, description="head")

    def figure():  # an emptied text box keeps showing the last prompt given
        shown = text_box.value if text_box.value.strip() else text
        return plot_attention(model, shown, layer_slider.value, head_slider.value)

    output = redrawn_figure(figure, (text_box, layer_slider, head_slider))
    heads = [(l, h) for l in range(model.cfg.n_layers) for h in range(model.cfg.n_heads)]
    static = stepped_figure([(f"L{l}H{h}", plot_attention(model, text, l, h)) for l, h in heads], "head",
                            active=heads.index((layer, head)), gap=120)  # below the rotated tokens
    return explorer([text_box, widgets.HBox([layer_slider, head_slider]), output], static)
