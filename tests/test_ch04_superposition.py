"""Chapter 04's reproduction of Toy Models of Superposition, asserted on seeded reference runs.

The settings are the notebook's (smaller than the paper's, so they run in seconds on a CPU); the
assertions are the paper's qualitative results.
"""
import math

import pytest
import torch

from solutions.ch04_superposition import (classify_phase, dimensions_per_feature, feature_dimensionality,
                                          feature_importance, feature_norms, generate_batch,
                                          superposition_per_feature, toy_forward, toy_loss, train_toy_models)
from utils.ch04_superposition import geometry_explorer, init_weights


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def five_features():
    """The notebook's first experiment: n=5, m=2, importance 0.9^i, sparsity 0 .. 0.99."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the notebook's runs, and restored: later modules keep every thread
    try:
        sparsity = 1 - torch.logspace(0, -2, 10)
        W0, b0 = init_weights(len(sparsity), 2, 5, seed=0)
        torch.manual_seed(0)
        W, b, losses = train_toy_models(W0, b0, feature_importance(5, 0.9), sparsity, n_steps=2000,
                                        batch_size=1024, lr=1e-2, progress=False)
    finally:
        torch.set_num_threads(threads)
    return sparsity, W, b, losses


def test_dense_model_keeps_the_two_most_important_features_orthogonally(five_features):
    sparsity, W, _, _ = five_features
    norms = feature_norms(W)[0]
    assert sparsity[0] == 0
    assert torch.allclose(norms[:2], torch.ones(2), atol=0.05), norms
    assert (norms[2:] < 0.1).all(), norms
    cosine = (W[0, :, 0] @ W[0, :, 1]) / (norms[0] * norms[1])
    assert abs(cosine) < 0.05
    assert superposition_per_feature(W)[0, :2].max() < 0.01


def test_sparse_model_represents_all_five_features_in_two_dimensions(five_features):
    sparsity, W, b, _ = five_features
    assert sparsity[-1] > 0.98
    norms = feature_norms(W)[-1]
    assert (norms > 0.9).all(), norms
    # a pentagon: the five directions are evenly spaced, 72 degrees apart, each D_i close to 2/5
    angles = torch.atan2(W[-1, 1], W[-1, 0]).sort().values
    gaps = torch.diff(torch.cat([angles, angles[:1] + 2 * math.pi]))
    assert torch.allclose(gaps, torch.full((5,), 2 * math.pi / 5), atol=0.15), gaps
    assert torch.allclose(feature_dimensionality(W)[-1], torch.full((5,), 0.4), atol=0.05)
    assert (b[-1] < 0).all(), "a negative bias filters interference"


def test_number_of_represented_features_grows_with_sparsity(five_features):
    _, W, _, _ = five_features
    represented = (feature_norms(W) >= 0.5).sum(-1)
    assert represented[0] == 2 and represented[-1] == 5
    assert (torch.diff(represented) >= 0).all(), represented


def test_linear_model_learns_only_the_top_two_features(five_features):
    sparsity, _, _, _ = five_features
    W0, b0 = init_weights(len(sparsity), 2, 5, seed=0)
    torch.manual_seed(0)
    W, _, _ = train_toy_models(W0, b0, feature_importance(5, 0.9), sparsity, n_steps=2000, batch_size=512,
                               lr=1e-2, relu=False, progress=False)
    norms = feature_norms(W)
    assert (norms[:, :2] > 0.9).all(), norms
    assert (norms[:, 2:] < 0.3).all(), norms


@pytest.mark.slow
def test_dimensions_per_feature_sticks_at_one_half():
    """n=40, m=8, uniform importance: the curve has a plateau at 1/2 before falling further."""
    inv_density = torch.logspace(0, 1.3, 12)
    W0, b0 = init_weights(12, 8, 40, seed=1)
    torch.manual_seed(1)
    W, _, _ = train_toy_models(W0, b0, torch.ones(40), 1 - 1 / inv_density, n_steps=2000, batch_size=256,
                               lr=1e-2, progress=False)
    dpf = dimensions_per_feature(W)
    assert abs(dpf[0] - 1) < 0.02, dpf  # dense: one dimension per feature
    near_half = ((dpf - 0.5).abs() < 0.05).nonzero().flatten().tolist()
    assert len(near_half) >= 3, dpf  # a plateau, not a point passed on the way down
    assert near_half == list(range(near_half[0], near_half[0] + len(near_half))), dpf
    assert dpf[-1] < 0.25, dpf  # and it falls further at high sparsity


@pytest.mark.slow
def test_phase_diagram_has_the_three_phases_where_the_paper_finds_them():
    k, seeds = 7, 3
    relative_importance, density = torch.logspace(-1, 1, k), torch.logspace(0, -2, k)
    R, D = torch.meshgrid(relative_importance, density, indexing="ij")
    sparsity = (1 - D.flatten()).repeat(seeds)
    importance = torch.stack([torch.ones(k * k), R.flatten()], dim=-1).repeat(seeds, 1)
    W0, b0 = init_weights(len(sparsity), 1, 2, seed=2)
    torch.manual_seed(2)
    W, b, _ = train_toy_models(W0, b0, importance, sparsity, n_steps=2000, batch_size=256, lr=1e-2, progress=False)
    x = generate_batch(20_000, sparsity, 2)
    loss = toy_loss(x, toy_forward(W, b, x), importance).reshape(seeds, k * k)
    W_best = W.reshape(seeds, k * k, 1, 2)[loss.argmin(0), torch.arange(k * k)]
    phase = classify_phase(W_best).reshape(k, k)
    dense = phase[:, 0]
    assert (dense[relative_importance < 0.9] == 0).all(), phase  # less important: dropped
    assert (dense[relative_importance > 1.1] == 1).all(), phase  # more important: takes the dimension
    sparse = phase[:, -1]
    assert (sparse[(relative_importance > 0.3) & (relative_importance < 5)] == 2).all(), phase
    # the superposition region widens as features get sparser
    width = (phase == 2).sum(dim=0)
    assert width[0] == 0 and width[-1] >= 5 and (torch.diff(width[: k // 2 + 1]) >= 0).all(), phase


def test_geometry_explorer_builds_and_redraws_headless():
    """Each slider position draws that instance's W: its feature directions and their norms,
    replacing the figure before it (no kernel here: what the widget holds is what it shows)."""
    import base64

    import numpy as np

    def values(array):  # plotly JSON: a list, or a base64 typed array
        if isinstance(array, dict):
            return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"])
        return np.asarray(array)

    W = torch.randn(3, 2, 5, generator=torch.Generator().manual_seed(0))
    sparsity = torch.tensor([0.0, 0.5, 0.9])
    explorer = geometry_explorer(W, feature_importance(5, 0.9), sparsity)
    slider, output = explorer.children
    for index in (0, 2, 1, 2):
        slider.value = index  # triggers a redraw, as moving the slider does
        assert len(output.outputs) == 1, "a redraw must replace the figure, not add one"
        figure = output.outputs[0]["data"]["application/vnd.plotly.v1+json"]
        *arrows, bars = figure["data"]
        assert len(arrows) == 5 and bars["type"] == "bar"
        np.testing.assert_allclose(values(bars["y"]), W[index].norm(dim=0).numpy(), rtol=1e-6)
        for f, arrow in enumerate(arrows):
            np.testing.assert_allclose(values(arrow["x"]), [0, W[index, 0, f].item()], rtol=1e-6)
            np.testing.assert_allclose(values(arrow["y"]), [0, W[index, 1, f].item()], rtol=1e-6)
