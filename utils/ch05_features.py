"""Chapter 05's feature tools: dashboards, a local feature browser, and features vs neurons.

Everything here reads a :class:`FeatureIndex`: an SAE's feature activations over a sample of
world text, with the contexts they came from. No exercise answer lives here. The index is built
with the exercise functions you pass it (the encoder, ``top_activating_contexts``,
``feature_logit_effects``, ``feature_density``), and the features-vs-neurons count takes
``monosemanticity``, so your own code is what the dashboards show.
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Callable

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from utils.plots import explorer, redrawn_figure, stepped_figure
from utils.world_categories import CATEGORY_NAMES, category_of_ids

FIRING = "#d62728"  # the colour of the token a context is shown for


@dataclass
class FeatureIndex:
    """An SAE's features over a sample of text, ready to browse.

    ``store`` holds where each row came from (``tokens`` [n_seq, seq_len], ``index`` [n, 2] of
    (sequence, position), ``by_position``: see ``utils.ch05_sae.Activations``); ``features``
    [n, d_sae] is the encoder's output on every row; ``density`` [d_sae] how often each fires.
    """
    model: object
    params: dict
    hook_name: str
    store: object
    features: torch.Tensor
    density: torch.Tensor
    vocab: list[str]
    encode: Callable
    top_activating_contexts: Callable
    feature_logit_effects: Callable

    @property
    def row_tokens(self) -> torch.Tensor:
        """The token id at every row: [n]."""
        return self.store.tokens[self.store.index[:, 0], self.store.index[:, 1]]


@torch.no_grad()
def encode_rows(acts: torch.Tensor, params: dict, encode: Callable, batch_size: int = 8192) -> torch.Tensor:
    """``encode(x, params)`` over every row of ``acts`` [n, d_in], a batch at a time: [n, d_sae]."""
    return torch.cat([encode(acts[i:i + batch_size], params) for i in range(0, len(acts), batch_size)])


def build_index(model, params: dict, store, hook_name: str, *, encode: Callable, top_activating_contexts: Callable,
                feature_logit_effects: Callable, feature_density: Callable) -> FeatureIndex:
    """Encode every row of ``store.acts`` and keep what the dashboards and the browser need."""
    features = encode_rows(store.acts, params, encode)
    vocab = model.tokenizer.convert_ids_to_tokens(list(range(len(model.tokenizer))))
    return FeatureIndex(model, params, hook_name, store, features, feature_density(features), vocab,
                        encode, top_activating_contexts, feature_logit_effects)


def _check_feature(index: FeatureIndex, feature: int) -> int:
    d_sae = index.features.shape[1]
    if not 0 <= int(feature) < d_sae:
        raise ValueError(f"feature {feature} does not exist: this SAE has features 0 to {d_sae - 1}")
    return int(feature)


# ----------------------------------------------------------------------------- dashboards

def context_html(index: FeatureIndex, seq: int, pos: int, before: int = 10, after: int = 3) -> str:
    """The words around (seq, pos), the firing token in bold colour; padding and <bos> left out."""
    row = index.store.tokens[seq].tolist()
    special = {index.model.tokenizer.pad_token_id, index.model.tokenizer.bos_token_id}
    words = []
    for p in range(max(0, pos - before), min(len(row), pos + after + 1)):
        if row[p] in special:
            continue
        word = html.escape(index.vocab[row[p]])
        words.append(f"<b><span style='color:{FIRING}'>[{word}]</span></b>" if p == pos else word)
    return " ".join(words)


def quantile_contexts(index: FeatureIndex, feature: int, n_top: int = 8, n_groups: int = 3,
                      per_group: int = 3, seed: int = 0) -> list[tuple[str, int, int, float]]:
    """Contexts for one feature, as (group, sequence, position, activation) rows.

    First the ``n_top`` strongest (from ``top_activating_contexts``), then ``per_group`` drawn at
    random from each of ``n_groups`` activation quantiles of the tokens it fires on (equal
    counts, strongest group first): a feature is what it does over its whole range, not only
    at its peak.
    """
    feature = _check_feature(index, feature)
    column = index.features[:, feature]
    by_position = index.store.by_position(column)
    top = index.top_activating_contexts(by_position, min(n_top, by_position.numel()))
    rows = [("top", int(s), int(p), float(by_position[s, p])) for s, p in top.tolist() if by_position[s, p] > 0]
    fired = column.nonzero()[:, 0]
    fired = fired[column[fired].argsort(descending=True)]
    g = torch.Generator().manual_seed(seed)
    for q, chunk in enumerate(fired.tensor_split(n_groups) if len(fired) else []):
        label = f"quantile {n_groups - q}/{n_groups}"
        for r in chunk[torch.randperm(len(chunk), generator=g)[:per_group]].tolist():
            seq, pos = index.store.index[r].tolist()
            rows.append((label, seq, pos, float(column[r])))
    return rows


def dashboard(index: FeatureIndex, feature: int, n_logits: int = 8) -> go.Figure:
    """One feature's dashboard: its contexts by quantile, its activation histogram, the tokens
    its decoder row pushes up and down through W_U (the direct logit effect), and its density."""
    feature = _check_feature(index, feature)
    rows = quantile_contexts(index, feature)
    fig = make_subplots(rows=2, cols=2, specs=[[{"type": "table", "colspan": 2}, None], [{}, {}]],
                        row_heights=[0.58, 0.42], vertical_spacing=0.1, horizontal_spacing=0.16,
                        subplot_titles=("contexts: the strongest, then each activation quantile",
                                        "activation where it fires", "direct logit effect (W_dec·W_U)"))
    fig.add_trace(go.Table(
        columnwidth=[1.3, 1, 7],
        header=dict(values=["group", "activation", "context"], align="left"),
        cells=dict(values=[[r[0] for r in rows], [f"{r[3]:.2f}" for r in rows],
                           [context_html(index, r[1], r[2]) for r in rows]], align="left")), row=1, col=1)
    fired = index.features[:, feature]
    fig.add_trace(go.Histogram(x=fired[fired != 0].tolist(), nbinsx=40, marker_color="#1f77b4",
                               name="activations", showlegend=False), row=2, col=1)
    effects = index.feature_logit_effects(index.params, index.model.W_U, feature).detach()
    order = effects.argsort(descending=True)
    for ids, colour in ((order[:n_logits].flip(0), "#2ca02c"), (order[-n_logits:].flip(0), FIRING)):
        fig.add_trace(go.Bar(x=effects[ids].tolist(), y=[index.vocab[i] for i in ids.tolist()],
                             orientation="h", marker_color=colour, showlegend=False), row=2, col=2)
    density = float(index.density[feature])
    fig.update_xaxes(title_text="activation", row=2, col=1)
    fig.update_yaxes(title_text="tokens", row=2, col=1)
    fig.update_xaxes(title_text="logit change per unit of activation", row=2, col=2)
    fig.update_layout(title=f"Feature {feature}: fires on {density:.3%} of tokens", height=820,
                      bargap=0.05, margin=dict(t=90))
    return fig


# ------------------------------------------------------------------------ the browser

def features_for_token(index: FeatureIndex, token: str, n: int = 8) -> list[tuple[int, float, float]]:
    """The features that fire most on ``token``: (feature, mean activation, share of its
    occurrences where the feature fires), strongest first, over the index's sample."""
    token_id = index.model.tokenizer.convert_tokens_to_ids(token.strip())
    if token_id is None or index.vocab[token_id] != token.strip():
        raise ValueError(f"{token!r} is not a token of this model's vocabulary")
    rows = index.row_tokens == token_id
    if not rows.any():
        raise ValueError(f"{token!r} never occurs in the indexed text: try another token")
    acts = index.features[rows]
    mean = acts.mean(dim=0)
    best = mean.argsort(descending=True)[:n]
    return [(f, float(mean[f]), float((acts[:, f] > 0).float().mean())) for f in best.tolist() if mean[f] > 0]


@torch.no_grad()
def prompt_features(index: FeatureIndex, prompt: str, n: int = 8) -> tuple[list[str], list[int], torch.Tensor]:
    """Which features fire on ``prompt``, and how much: (its tokens, the ``n`` features with the
    largest activation anywhere in it, their activations [n_tokens, n]). <bos> is left out."""
    if not prompt.strip():
        raise ValueError("the prompt is empty: type some text")
    tokens = index.model.to_tokens(prompt)
    _, cache = index.model.run_with_cache(tokens, names_filter=index.hook_name)
    acts = index.encode(cache[index.hook_name][0, 1:].float(), index.params)
    best = acts.max(dim=0).values.argsort(descending=True)[:n]
    words = [index.vocab[t] for t in tokens[0, 1:].tolist()]
    return words, best.tolist(), acts[:, best]


def token_search_figure(index: FeatureIndex, token: str) -> go.Figure:
    """A bar per feature found by :func:`features_for_token`."""
    found = features_for_token(index, token)
    return go.Figure(go.Bar(x=[f"F{f}" for f, _, _ in found], y=[m for _, m, _ in found],
                            text=[f"fires {share:.0%}" for _, _, share in found], marker_color="#1f77b4"),
                     layout=dict(title=f"Features that fire most on '{token.strip()}'", height=330,
                                 xaxis_title="feature", yaxis_title="mean activation on the token"))


def prompt_search_figure(index: FeatureIndex, prompt: str) -> go.Figure:
    """A heatmap of the prompt's strongest features at each of its tokens."""
    words, features, acts = prompt_features(index, prompt)
    return go.Figure(go.Heatmap(z=acts.T.tolist(), x=[f"{i}:{w}" for i, w in enumerate(words)],
                                y=[f"F{f}" for f in features], colorscale="Blues",
                                colorbar=dict(title="activation")),
                     layout=dict(title="Features that fire on the prompt", height=360,
                                 xaxis_title="token", yaxis_title="feature"))


def _message(error: Exception) -> go.Figure:
    return go.Figure(layout=dict(title=str(error), height=200))


def feature_browser(index: FeatureIndex, token: str = "Paris", prompt: str = "The capital of France is Paris",
                    n_static: int = 4):
    """A local Neuronpedia: search features by token or by prompt, open any one's dashboard.

    In Jupyter: type a token or a prompt, pick a feature from the results, see its dashboard.
    The book shows the static twin: the dashboards of the ``n_static`` features that fire most
    on ``token``, behind a slider.
    """
    import ipywidgets as widgets

    mode = widgets.ToggleButtons(options=["token", "prompt"], value="token", description="search by")
    token_box = widgets.Text(value=token, description="token", continuous_update=False)
    prompt_box = widgets.Text(value=prompt, description="prompt", continuous_update=False,
                              layout=widgets.Layout(width="60%"))
    choice = widgets.Dropdown(description="feature")

    def found() -> list[int]:
        try:
            if mode.value == "token":
                return [f for f, _, _ in features_for_token(index, token_box.value)]
            return prompt_features(index, prompt_box.value)[1]
        except ValueError:
            return []

    def search_figure() -> go.Figure:
        try:
            if mode.value == "token":
                return token_search_figure(index, token_box.value)
            return prompt_search_figure(index, prompt_box.value)
        except ValueError as error:
            return _message(error)

    def refresh(_=None):
        options = found()
        choice.options = [(f"F{f}", f) for f in options]
        choice.value = options[0] if options else None

    def dashboard_figure() -> go.Figure:
        return dashboard(index, choice.value) if choice.value is not None else _message("no feature to show")

    refresh()
    for control in (mode, token_box, prompt_box):
        control.observe(refresh, names="value")
    search = redrawn_figure(search_figure, [mode, token_box, prompt_box])
    shown = redrawn_figure(dashboard_figure, [choice])
    static = stepped_figure([(f"F{f}", dashboard(index, f)) for f in found()[:n_static]], "feature")
    return explorer([mode, widgets.HBox([token_box, prompt_box]), search, choice, shown], static)


# ------------------------------------------------------------------ features vs neurons

def row_categories(index_or_store, model, next_token: bool = False) -> torch.Tensor:
    """The world category (an index into ``CATEGORY_NAMES``) of each row's token: [n].

    With ``next_token``, the category of the token that follows it instead (padding, at the
    end of a sequence, is ``special``).
    """
    store = getattr(index_or_store, "store", index_or_store)
    seq, pos = store.index[:, 0], store.index[:, 1]
    if next_token:
        padded = torch.nn.functional.pad(store.tokens, (0, 1), value=model.tokenizer.pad_token_id)
        return category_of_ids(model)[padded[seq, pos + 1]]
    return category_of_ids(model)[store.tokens[seq, pos]]


def unit_labels(unit_acts: torch.Tensor, categories: torch.Tensor, monosemanticity: Callable,
                k: int = 20) -> list[tuple[str, float] | None]:
    """Label every unit (a column of ``unit_acts`` [n, n_units]) by the categories of its ``k``
    largest activations: ``monosemanticity(categories)`` -> (category, share). A unit with
    fewer than ``k`` positive activations in the sample gets None (too rare to judge)."""
    if unit_acts.shape[0] != categories.shape[0]:
        raise ValueError(f"{unit_acts.shape[0]} rows of activations but {categories.shape[0]} categories")
    values, rows = unit_acts.topk(k, dim=0)
    labels = []
    for u in range(unit_acts.shape[1]):
        if values[-1, u] <= 0:
            labels.append(None)
        else:
            labels.append(monosemanticity([CATEGORY_NAMES[c] for c in categories[rows[:, u]].tolist()]))
    return labels


def features_and_neurons(index: FeatureIndex, neuron_store, monosemanticity: Callable, k: int = 20,
                         next_token: bool = False) -> tuple[list, list]:
    """:func:`unit_labels` for every SAE feature of ``index`` and every neuron of ``neuron_store``
    (activations collected on the same tokens, e.g. ``blocks.2.mlp.hook_post`` with the same
    ``n_tokens`` and seed), labelled by the same tokens' categories."""
    same = (index.store.tokens.shape == neuron_store.tokens.shape and torch.equal(index.store.tokens, neuron_store.tokens)
            and torch.equal(index.store.index, neuron_store.index))
    if not same:
        raise ValueError("the neurons were collected on other tokens: collect them with the same n_tokens and seed")
    categories = row_categories(index.store, index.model, next_token)
    return (unit_labels(index.features, categories, monosemanticity, k),
            unit_labels(neuron_store.acts, categories, monosemanticity, k))


def monosemantic(label: tuple[str, float] | None, threshold: float) -> bool:
    """A unit is monosemantic when at least ``threshold`` of its top activations share one
    named category. ``other`` (function words, verbs, ...) is no category: a unit whose top
    tokens are "to", "gave" and "was" is not explained by it."""
    return label is not None and label[0] != "other" and label[1] >= threshold


def monosemantic_fraction(labels: list, threshold: float) -> float:
    """The fraction of the labelled (live) units that are :func:`monosemantic`."""
    live = [label for label in labels if label is not None]
    if not live:
        raise ValueError("no unit has enough positive activations to be labelled")
    return sum(monosemantic(label, threshold) for label in live) / len(live)


def features_vs_neurons_figure(feature_labels: list, neuron_labels: list, threshold: float) -> go.Figure:
    """Left: the share of each unit's top activations that its commonest category holds, for
    SAE features and for MLP neurons. Right: what the monosemantic ones are about."""
    fig = make_subplots(rows=1, cols=2, column_widths=[0.45, 0.55], horizontal_spacing=0.12,
                        subplot_titles=("share held by the top category",
                                        f"monosemantic units (≥ {threshold:.0%}) by category"))
    for name, labels, colour in (("SAE features", feature_labels, "#1f77b4"), ("MLP neurons", neuron_labels, "#ff7f0e")):
        live = [label for label in labels if label is not None]
        fraction = monosemantic_fraction(labels, threshold)
        fig.add_trace(go.Histogram(x=[share for _, share in live], histnorm="percent", xbins=dict(start=0, end=1.0001, size=0.05),
                                   name=f"{name}: {fraction:.0%} monosemantic", marker_color=colour),
                      row=1, col=1)
        counts = {c: sum(1 for label in live if monosemantic(label, threshold) and label[0] == c) for c in CATEGORY_NAMES}
        fig.add_trace(go.Bar(x=[c for c in CATEGORY_NAMES if counts[c]], y=[counts[c] for c in CATEGORY_NAMES if counts[c]],
                             marker_color=colour, showlegend=False, name=name), row=1, col=2)
    fig.add_vline(x=threshold, line_dash="dash", row=1, col=1)
    fig.update_xaxes(title_text="share", row=1, col=1)
    fig.update_yaxes(title_text="% of live units", row=1, col=1)
    fig.update_yaxes(title_text="units", row=1, col=2)
    fig.update_layout(barmode="group", height=460, legend=dict(orientation="h", y=-0.25), margin=dict(t=110),
                      title=dict(text="Are SAE features more monosemantic than neurons?", y=0.97))
    return fig
