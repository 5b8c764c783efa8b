"""The explorers' static twins: one plotly figure per explorer that holds the views its controls
reach, behind a slider, for pages without a kernel (the book; tests/test_book.py draws them)."""
import base64

import numpy as np
import plotly.graph_objects as go
import torch

from utils.plots import EXPLORER_CLASS, explorer, stepped_figure

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def values(array) -> np.ndarray:
    """A plotly JSON array (a list, or a base64 typed array with dtype and shape) as numpy."""
    if isinstance(array, dict):
        flat = np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"])
        return flat.reshape([int(n) for n in str(array.get("shape", len(flat))).split(",")])
    return np.asarray(array)


def shown_by_step(figure: dict, step: int) -> list[dict]:
    """The traces a slider step makes visible."""
    visible = figure["layout"]["sliders"][0]["steps"][step]["args"][0]["visible"]
    return [trace for trace, shown in zip(figure["data"], visible) if shown]


def test_stepped_figure_shows_one_view_per_step():
    views = [(f"v{k}", go.Figure([go.Scatter(y=[k, k + 1]), go.Bar(y=[k])], layout=dict(title=f"view {k}")))
             for k in range(3)]
    figure = stepped_figure(views, "view", active=1).to_plotly_json()
    assert len(figure["data"]) == 6
    steps = figure["layout"]["sliders"][0]["steps"]
    assert [s["label"] for s in steps] == ["v0", "v1", "v2"]
    for k, step in enumerate(steps):
        assert [values(t["y"]).tolist() for t in shown_by_step(figure, k)] == [[k, k + 1], [k]]
        assert step["args"][1] == {"title.text": f"view {k}"}
    opened = [t for t in figure["data"] if t.get("visible", True)]
    assert [values(t["y"]).tolist() for t in opened] == [[1, 2], [1]], "it must open on the active view"
    assert figure["layout"]["title"]["text"] == "view 1" and figure["layout"]["sliders"][0]["active"] == 1


def test_an_explorer_offers_the_widget_and_its_static_twin():
    """Jupyter picks the widget view; the book, which leaves that mimetype out, shows the HTML."""
    import ipywidgets as widgets

    static = go.Figure(go.Scatter(y=[1, 2]), layout=dict(title="twin"))
    box = explorer([widgets.IntSlider()], static)
    bundle = box._repr_mimebundle_()
    assert WIDGET_VIEW in bundle and bundle[WIDGET_VIEW]["model_id"] == box.model_id
    assert f'class="{EXPLORER_CLASS}"' in bundle["text/html"] and "Plotly.newPlot" in bundle["text/html"]
    assert '"twin"' in bundle["text/html"] and '"displayModeBar": false' in bundle["text/html"]


def test_geometry_explorer_twin_holds_every_instance():
    from solutions.ch04_superposition import feature_importance
    from utils.ch04_superposition import geometry_explorer

    W = torch.randn(3, 2, 5, generator=torch.Generator().manual_seed(0))
    figure = geometry_explorer(W, feature_importance(5, 0.9), torch.tensor([0.0, 0.5, 0.9])).static.to_plotly_json()
    assert len(figure["layout"]["sliders"][0]["steps"]) == 3
    for i in range(3):
        *arrows, bars = shown_by_step(figure, i)
        np.testing.assert_allclose(values(bars["y"]), W[i].norm(dim=0).numpy(), rtol=1e-6)
        for f, arrow in enumerate(arrows):
            np.testing.assert_allclose(values(arrow["x"]), [0, W[i, 0, f].item()], rtol=1e-6)


def test_attention_explorer_twin_holds_every_head_on_its_text():
    from utils.ch01_circuits import attention_explorer
    from utils.models import load_model

    model = load_model()
    text = "The capital of France is"
    with torch.no_grad():
        _, cache = model.run_with_cache(model.to_tokens(text))
    figure = attention_explorer(model, text, layer=1, head=0).static.to_plotly_json()
    steps = figure["layout"]["sliders"][0]["steps"]
    heads = [(layer, head) for layer in range(model.cfg.n_layers) for head in range(model.cfg.n_heads)]
    assert [s["label"] for s in steps] == [f"L{layer}H{head}" for layer, head in heads]
    assert figure["layout"]["sliders"][0]["active"] == heads.index((1, 0)), "it opens on the head asked for"
    for k, (layer, head) in enumerate(heads):
        (heatmap,) = shown_by_step(figure, k)
        np.testing.assert_allclose(values(heatmap["z"]), cache["pattern", layer][0, head].numpy(), atol=1e-6)
        assert steps[k]["args"][1]["title.text"] == f"Head L{layer}H{head}"
