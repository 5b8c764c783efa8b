"""Helpers for chapter 04 (superposition): initial weights, the paper's figures, a sparsity explorer.

Weights follow the chapter's convention: ``W`` is ``[n_instances, n_hidden, n_features]`` and
``b`` is ``[n_instances, n_features]``.
"""
from __future__ import annotations

import math
from fractions import Fraction

import plotly.graph_objects as go
import torch
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from utils.plots import explorer, redrawn_figure, stepped_figure

# The fractions the paper marks on its dimensions-per-feature plot.
PAPER_FRACTIONS = [Fraction(1), Fraction(3, 4), Fraction(2, 3), Fraction(1, 2), Fraction(2, 5), Fraction(1, 3)]
PHASE_NAMES = ["not represented", "dedicated dimension", "superposition"]
PHASE_COLOURS = ["#d9d9d9", "#4c78a8", "#f58518"]


def init_weights(n_instances: int, n_hidden: int, n_features: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Xavier-normal W (std sqrt(2 / (m + n)), as in the paper's code) and a zero bias, seeded."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(n_instances, n_hidden, n_features, generator=g) * math.sqrt(2 / (n_hidden + n_features))
    return W, torch.zeros(n_instances, n_features)


def sparsity_label(s: float) -> str:
    return f"S = {s:.3g}" if s < 0.99 else f"1-S = {1 - s:.2g}"


def plot_WtW_and_bias(W: torch.Tensor, b: torch.Tensor, titles: list[str], per_row: int = 5) -> go.Figure:
    """The paper's first figure: W^T W (above) and b (below) for each instance, ``per_row`` a row.

    Two rows of five keep each panel wide enough for its title at the book's column width.
    """
    n = len(titles)
    rows, cols = math.ceil(n / per_row), min(n, per_row)
    WtW = torch.einsum("ihf,ihg->ifg", W, W)
    panel_titles = [t for r in range(rows) for t in [*titles[r * cols:(r + 1) * cols], *[""] * cols]]
    fig = make_subplots(rows=2 * rows, cols=cols, subplot_titles=panel_titles, row_heights=[0.78, 0.22] * rows,
                        vertical_spacing=0.12 / rows, horizontal_spacing=0.03)
    for i in range(n):
        row, col = 2 * (i // cols) + 1, i % cols + 1
        fig.add_trace(go.Heatmap(z=WtW[i].numpy(), zmin=-1, zmax=1, colorscale="RdBu", reversescale=True,
                                 showscale=i == 0, colorbar=dict(title="W<sup>T</sup>W", len=0.6),
                                 hovertemplate="W<sub>%{y}</sub> · W<sub>%{x}</sub> = %{z:.2f}<extra></extra>"),
                      row=row, col=col)
        fig.add_trace(go.Heatmap(z=b[i].numpy()[None, :], zmin=-1, zmax=1, colorscale="RdBu", reversescale=True,
                                 showscale=False, hovertemplate="b<sub>%{x}</sub> = %{z:.2f}<extra></extra>"),
                      row=row + 1, col=col)
        fig.update_yaxes(autorange="reversed", showticklabels=False, row=row, col=col)
        fig.update_yaxes(showticklabels=False, row=row + 1, col=col)
        fig.update_xaxes(showticklabels=False, row=row, col=col)
        fig.update_xaxes(showticklabels=False, row=row + 1, col=col)
    fig.update_annotations(font_size=13)
    fig.update_layout(height=60 + 230 * rows, width=max(500, 140 * cols), margin=dict(t=60, l=20, r=20, b=20),
                      title="W<sup>T</sup>W (squares) and bias b (strips below), sparsity growing")
    return fig


def _geometry_traces(W2: torch.Tensor, importance: torch.Tensor, show_legend: bool = False) -> list:
    """Lines from the origin to each feature's 2-D direction, coloured by importance."""
    colours = sample_colorscale("Plasma", [0.85 * i / max(1, len(importance) - 1) for i in range(len(importance))])
    traces = []
    for f in range(W2.shape[1]):
        x, y = W2[0, f].item(), W2[1, f].item()
        traces.append(go.Scatter(x=[0, x], y=[0, y], mode="lines+markers", line=dict(color=colours[f], width=3),
                                 marker=dict(size=[0, 9]), name=f"feature {f} (importance {importance[f]:.2f})",
                                 showlegend=show_legend, legendgroup=str(f),
                                 hovertemplate=f"feature {f}<br>W = (%{{x:.2f}}, %{{y:.2f}})<extra></extra>"))
    return traces


def plot_feature_geometry(W: torch.Tensor, importance: torch.Tensor, titles: list[str], per_row: int = 5) -> go.Figure:
    """Each instance's features as arrows in its 2-D hidden space (needs n_hidden = 2)."""
    n = len(titles)
    rows, cols = math.ceil(n / per_row), min(n, per_row)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.02, vertical_spacing=0.08)
    for i in range(n):
        row, col = i // cols + 1, i % cols + 1
        for trace in _geometry_traces(W[i], importance, show_legend=i == 0):
            fig.add_trace(trace, row=row, col=col)
        fig.update_xaxes(range=[-1.4, 1.4], showticklabels=False, row=row, col=col)
        fig.update_yaxes(range=[-1.4, 1.4], showticklabels=False, scaleanchor=f"x{i + 1}" if i else "x",
                         row=row, col=col)
    fig.update_layout(height=110 + 190 * rows, width=max(500, 190 * cols), margin=dict(t=60, l=20, r=20, b=60),
                      legend=dict(orientation="h", y=-0.02, yanchor="top", x=0),
                      title="Feature directions W<sub>i</sub> (colour: importance, darkest = most important)")
    return fig


def plot_norms_and_superposition(norms: torch.Tensor, superposition: torch.Tensor, titles: list[str],
                                 per_row: int = 5) -> go.Figure:
    """The paper's bar chart: ||W_i|| per feature, coloured by how superposed the feature is."""
    n = len(titles)
    rows, cols = math.ceil(n / per_row), min(n, per_row)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.02,
                        vertical_spacing=0.25 / rows, shared_yaxes=True)
    for i in range(n):
        row, col = i // cols + 1, i % cols + 1
        fig.add_trace(go.Bar(x=list(range(norms.shape[1])), y=norms[i].numpy(),
                             marker=dict(color=superposition[i].clamp(0, 1).numpy(), colorscale="Viridis", cmin=0,
                                         cmax=1, showscale=i == 0,
                                         colorbar=dict(title="superposition")),
                             hovertemplate="feature %{x}<br>||W|| = %{y:.2f}<extra></extra>"), row=row, col=col)
        fig.update_yaxes(range=[0, max(1.3, norms.max().item() * 1.05)], row=row, col=col)
    fig.update_xaxes(title_text="feature", row=rows, col=1)
    fig.update_yaxes(title_text="||W<sub>i</sub>||", col=1)
    fig.update_annotations(font_size=13)
    fig.update_layout(height=60 + 200 * rows, width=max(500, 130 * cols), showlegend=False,
                      margin=dict(t=60, l=50, r=20, b=40),
                      title="Feature norms (dark: a dimension of its own, yellow: shared)")
    return fig


def plot_instance_geometry(W2: torch.Tensor, importance: torch.Tensor, label: str) -> go.Figure:
    """One instance's feature directions (left) and norms (right); W2 is [2, n_features]."""
    norms = W2.norm(dim=0)
    fig = make_subplots(rows=1, cols=2, column_widths=[0.5, 0.5],
                        subplot_titles=["feature directions", "feature norms ||W<sub>i</sub>||"])
    for trace in _geometry_traces(W2, importance):
        fig.add_trace(trace, row=1, col=1)
    fig.add_trace(go.Bar(x=list(range(len(norms))), y=norms.numpy(), showlegend=False,
                         marker_color=["#4c78a8" if v >= 0.5 else "#d9d9d9" for v in norms.tolist()]), row=1, col=2)
    fig.update_xaxes(range=[-1.5, 1.5], row=1, col=1)
    fig.update_yaxes(range=[-1.5, 1.5], scaleanchor="x", row=1, col=1)
    fig.update_yaxes(range=[0, 1.5], row=1, col=2)
    fig.update_xaxes(title_text="feature", row=1, col=2)
    fig.update_layout(height=350, width=680, margin=dict(t=85, l=30, r=20, b=40),
                      title=f"{label}: {int((norms >= 0.5).sum())} of {len(norms)} features represented")
    return fig


def geometry_explorer(W: torch.Tensor, importance: torch.Tensor, sparsity: torch.Tensor):
    """An ipywidgets slider over the trained sparsities that redraws the 2-D feature geometry.

    Nothing is trained in the callback: W holds one trained instance per sparsity value. Where no
    kernel runs (the book), its static twin shows instead: one plotly figure with every
    instance behind a plotly slider.
    """
    import ipywidgets as widgets

    labels = [sparsity_label(s) for s in sparsity.tolist()]
    slider = widgets.SelectionSlider(options=[(label, i) for i, label in enumerate(labels)], value=0,
                                     description="sparsity", continuous_update=False,
                                     layout=widgets.Layout(width="500px"))
    output = redrawn_figure(lambda: plot_instance_geometry(W[slider.value], importance, labels[slider.value]),
                            (slider,))
    views = [(label, plot_instance_geometry(W[i], importance, label)) for i, label in enumerate(labels)]
    return explorer([slider, output], stepped_figure(views, "sparsity"))


def plot_dimensions_per_feature(inv_density: torch.Tensor, dims_per_feature: torch.Tensor,
                                feature_dims: torch.Tensor | None = None,
                                norms: torch.Tensor | None = None) -> go.Figure:
    """Dimensions per feature m / ||W||_F^2 against 1/(1-S), with the paper's fractions marked.

    ``feature_dims`` ([n_instances, n_features], optional) adds each feature's own dimensionality
    D_i as faint points, as the paper does; with ``norms``, only represented features (norm at
    least 0.5) are drawn.
    """
    fig = go.Figure()
    if feature_dims is not None:
        xs = inv_density[:, None].expand_as(feature_dims)
        keep = norms >= 0.5 if norms is not None else feature_dims > 0.05
        jitter = 1 + 0.04 * (torch.rand(xs.shape, generator=torch.Generator().manual_seed(0)) - 0.5)
        fig.add_trace(go.Scatter(x=(xs * jitter)[keep].numpy(), y=feature_dims[keep].numpy(), mode="markers",
                                 marker=dict(size=4, color="rgba(76,120,168,0.25)"), name="D<sub>i</sub> of each feature"))
    fig.add_trace(go.Scatter(x=inv_density.numpy(), y=dims_per_feature.numpy(), mode="lines+markers",
                             line=dict(color="black"), name="m / ||W||<sub>F</sub><sup>2</sup>"))
    for frac in PAPER_FRACTIONS:
        fig.add_hline(y=float(frac), line=dict(color="grey", dash="dot", width=1),
                      annotation_text=str(frac), annotation_position="right")
    low, high = math.log10(inv_density.min().item()), math.log10(inv_density.max().item())
    fig.update_xaxes(type="log", range=[low - 0.05, high + 0.05], title="1 / (1 - S)  (how rarely a feature appears)")
    fig.update_yaxes(title="dimensions per feature", range=[0, 1.1])
    fig.update_layout(height=380, width=700, title="Dimensions per feature as sparsity grows",
                      margin=dict(t=50, l=60, r=60, b=50))
    return fig


def plot_phase_diagram(phase: torch.Tensor, relative_importance: torch.Tensor, density: torch.Tensor) -> go.Figure:
    """The n=2, m=1 phase diagram: phase[i, j] for relative_importance[i] and feature density density[j]."""
    fig = go.Figure(go.Heatmap(
        z=phase.numpy(), x=[f"{d:.3g}" for d in density.tolist()], y=[f"{r:.2g}" for r in relative_importance.tolist()],
        zmin=-0.5, zmax=2.5, colorscale=[[0, PHASE_COLOURS[0]], [1 / 3, PHASE_COLOURS[0]], [1 / 3, PHASE_COLOURS[1]],
                                         [2 / 3, PHASE_COLOURS[1]], [2 / 3, PHASE_COLOURS[2]], [1, PHASE_COLOURS[2]]],
        colorbar=dict(tickvals=[0, 1, 2], ticktext=PHASE_NAMES, title="extra feature"),
        hovertemplate="density 1-S = %{x}<br>relative importance = %{y}<br>phase %{z}<extra></extra>"))
    fig.update_xaxes(title="feature density 1 - S  (sparser to the right)", type="category")
    fig.update_yaxes(title="importance of the extra feature", type="category")
    fig.update_layout(height=420, width=640, title="Phase diagram: one extra feature, n = 2, m = 1",
                      margin=dict(t=50, l=60, r=20, b=50))
    return fig


def train_neuron_models(importance: torch.Tensor, sparsity: torch.Tensor, n_hidden: int, n_steps: int,
                        batch_size: int = 512, lr: float = 1e-2, seed: int = 0,
                        progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's model with a privileged basis: h = ReLU(W x), x' = ReLU(W^T h + b).

    The ReLU on the hidden layer makes each hidden dimension a *neuron*, so we can ask which
    features each neuron responds to. Trains one instance per sparsity with Adam, drawing its
    own seeded batches; returns (W [n_instances, n_hidden, n_features], b).
    """
    from tqdm.auto import tqdm

    g = torch.Generator().manual_seed(seed)
    n_instances, n_features = len(sparsity), importance.shape[-1]
    W = (torch.randn(n_instances, n_hidden, n_features, generator=g)
         * math.sqrt(2 / (n_hidden + n_features))).requires_grad_(True)
    b = torch.zeros(n_instances, n_features, requires_grad=True)
    optimizer = torch.optim.Adam([W, b], lr=lr)
    shape = (batch_size, n_instances, n_features)
    for _ in tqdm(range(n_steps), desc="training neuron models", disable=not progress):
        x = torch.rand(shape, generator=g) * (torch.rand(shape, generator=g) < (1 - sparsity)[:, None])
        h = torch.einsum("ihf,bif->bih", W, x).relu()
        out = (torch.einsum("ihf,bih->bif", W, h) + b).relu()
        loss = (importance * (x - out) ** 2).mean(dim=(0, 2)).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return W.detach(), b.detach()


def plot_neuron_weights(W: torch.Tensor, titles: list[str]) -> go.Figure:
    """W per instance as a neurons x features heatmap: a row with several strong entries is polysemantic."""
    n = len(titles)
    fig = make_subplots(rows=1, cols=n, subplot_titles=titles, horizontal_spacing=0.03)
    for i in range(n):
        fig.add_trace(go.Heatmap(z=W[i].numpy(), zmin=-1.5, zmax=1.5, colorscale="RdBu", reversescale=True,
                                 showscale=i == 0, colorbar=dict(title="W"),
                                 hovertemplate="neuron %{y}, feature %{x}: %{z:.2f}<extra></extra>"),
                      row=1, col=i + 1)
        fig.update_yaxes(autorange="reversed", title_text="neuron" if i == 0 else None, row=1, col=i + 1)
        fig.update_xaxes(title_text="feature", row=1, col=i + 1)
    fig.update_layout(height=260, width=max(500, 220 * n), margin=dict(t=60, l=50, r=20, b=40),
                      title="Neuron weights W (rows: neurons, columns: features by importance)")
    return fig
