"""Chapter 05's feature tools on world-neox's real activations: dashboards show the real top
activations, the browser finds planted features, and features vs neurons labels a planted
country detector monosemantic. The exercise functions come from the references."""
import pytest
import torch

from solutions.ch05_sparse_autoencoders import (encode_relu, feature_density, feature_logit_effects,
                                                monosemanticity, top_activating_contexts)
from utils.ch05_features import (FeatureIndex, build_index, dashboard, feature_browser, features_and_neurons,
                                 features_for_token, features_vs_neurons_figure, monosemantic_fraction,
                                 prompt_features, quantile_contexts, row_categories, unit_labels)
from utils.ch05_sae import collect_activations
from utils.models import cached_model
from utils.plots import EXPLORER_CLASS
from utils.world_categories import CATEGORY_NAMES

HOOK = "blocks.2.hook_resid_pre"


@pytest.fixture(scope="module")
def model():
    return cached_model()


@pytest.fixture(scope="module")
def store(model):
    return collect_activations(model, HOOK, 3000, seed=5)


def token_id(model, word):
    return model.tokenizer.convert_tokens_to_ids(word)


@pytest.fixture(scope="module")
def paris_sae(model, store):
    """An SAE of 15 weak random features (each fires on about half the tokens) and feature 7,
    planted to fire on "Paris" only: it reads the direction that best separates the residual on
    "Paris" from the rest (Fisher's linear discriminant), with its threshold half way between
    the highest other token and the lowest "Paris" in this sample."""
    g = torch.Generator().manual_seed(0)
    d_in, d_sae = store.acts.shape[1], 16
    rows = store.tokens[store.index[:, 0], store.index[:, 1]]
    paris, mean = rows == token_id(model, "Paris"), store.acts.mean(0)
    between = store.acts[paris].mean(0) - mean
    direction = torch.linalg.solve(torch.cov(store.acts.T) + 1e-2 * torch.eye(d_in), between)
    direction = direction / direction.norm()
    projection = (store.acts - mean) @ direction
    W_enc = torch.randn(d_in, d_sae, generator=g) * 0.01
    W_enc[:, 7] = direction
    b_enc = torch.zeros(d_sae)
    b_enc[7] = -(float(projection[paris].min()) + float(projection[~paris].max())) / 2
    return {"W_enc": W_enc, "b_enc": b_enc, "b_dec": mean, "W_dec": torch.randn(d_sae, d_in, generator=g)}


@pytest.fixture(scope="module")
def index(model, store, paris_sae):
    return build_index(model, paris_sae, store, HOOK, encode=encode_relu, top_activating_contexts=top_activating_contexts,
                       feature_logit_effects=feature_logit_effects, feature_density=feature_density)


def test_planted_feature_fires_on_paris_only(model, index):
    paris = index.row_tokens == token_id(model, "Paris")
    assert paris.any() and torch.equal(index.features[:, 7] > 0, paris)


def test_token_search_finds_the_feature_that_fires_on_the_token(index):
    found = features_for_token(index, "Paris")
    assert found[0][0] == 7 and found[0][2] > 0.9
    assert [m for _, m, _ in found] == sorted((m for _, m, _ in found), reverse=True)
    assert all(f != 7 for f, _, _ in features_for_token(index, "Mary")[:1])


def test_token_search_says_what_is_wrong(index):
    with pytest.raises(ValueError, match="vocabulary"):
        features_for_token(index, "Narnia")
    with pytest.raises(ValueError, match="never occurs"):
        features_for_token(index, "<unk>")


def test_prompt_search_puts_the_feature_on_the_token(index):
    words, features, acts = prompt_features(index, "Mary lives in Paris , the capital of France .")
    assert features[0] == 7
    assert words[int(acts[:, 0].argmax())] == "Paris" and words[0] == "Mary"
    with pytest.raises(ValueError, match="empty"):
        prompt_features(index, "  ")


def test_dashboard_contexts_are_the_real_top_activations(model, index):
    column = index.features[:, 7]
    top = [r for r in quantile_contexts(index, 7, n_top=5) if r[0] == "top"]
    assert len(top) == min(5, int((column > 0).sum()))
    assert [a for *_, a in top] == pytest.approx(column.topk(len(top)).values.tolist())
    for _, seq, pos, activation in top:
        assert index.store.tokens[seq, pos] == token_id(model, "Paris")
    table = dashboard(index, 7).data[0]
    assert list(table.cells.values[1][:len(top)]) == [f"{a:.2f}" for *_, a in top]
    assert all("[Paris]</span></b>" in text for text in table.cells.values[2][:len(top)])


def test_dashboard_quantile_groups_span_the_whole_range(index):
    rows = quantile_contexts(index, 3, n_top=4, n_groups=3, per_group=2)
    groups = [r[0] for r in rows]
    assert groups == ["top"] * 4 + ["quantile 3/3"] * 2 + ["quantile 2/3"] * 2 + ["quantile 1/3"] * 2
    lowest, highest = min(r[3] for r in rows if r[0] == "quantile 3/3"), max(r[3] for r in rows if r[0] == "quantile 1/3")
    assert lowest >= highest > 0


def test_dashboard_shows_logit_effects_histogram_and_density(model, index, paris_sae):
    fig = dashboard(index, 7)
    table, histogram, up, down = fig.data
    effects = (paris_sae["W_dec"][7] @ model.W_U).detach()
    assert max(up.x) == up.x[-1] == pytest.approx(float(effects.max()), rel=1e-5)
    assert min(down.x) == down.x[0] == pytest.approx(float(effects.min()), rel=1e-5)
    assert min(up.x) > max(down.x) and len(up.x) == len(down.x) == 8
    assert len(histogram.x) == int((index.features[:, 7] > 0).sum())
    assert f"{float(index.density[7]):.3%}" in fig.layout.title.text
    with pytest.raises(ValueError, match="features 0 to 15"):
        dashboard(index, 16)


def test_browser_static_twin_holds_the_dashboards_of_the_found_features(index):
    browser = feature_browser(index, token="Paris", n_static=3)
    figure = browser.static.to_plotly_json()
    steps = figure["layout"]["sliders"][0]["steps"]
    assert [s["label"] for s in steps] == [f"F{f}" for f, _, _ in features_for_token(index, "Paris")[:3]]
    assert steps[0]["args"][1]["title.text"].startswith("Feature 7:")
    assert len(figure["data"]) == 4 * len(steps)
    bundle = browser._repr_mimebundle_()
    assert f'class="{EXPLORER_CLASS}"' in bundle["text/html"]


def test_browser_widgets_search_and_open_a_dashboard(index):
    browser = feature_browser(index, token="Paris")
    mode, texts, search, choice, shown = browser.children
    assert choice.value == 7 and "Feature 7" in str(shown.outputs[0]["data"])
    texts.children[0].value = "Narnia"
    assert "vocabulary" in str(search.outputs[0]["data"]) and choice.value is None
    mode.value = "prompt"
    texts.children[1].value = "Mary lives in Paris , the capital of France ."
    assert choice.value == 7


def test_planted_country_detector_is_monosemantic_and_noise_is_not(model, store):
    categories = row_categories(store, model)
    is_country = (categories == CATEGORY_NAMES.index("country")).float()
    g = torch.Generator().manual_seed(1)
    noise = torch.rand(len(categories), 3, generator=g)
    rare = torch.zeros(len(categories), 1)  # fires on 19 countries only: too few for k = 20
    rare[is_country.nonzero()[:19, 0]] = 1.0
    units = torch.cat([is_country[:, None] * (1 + torch.rand(len(categories), 1, generator=g)), noise,
                       torch.zeros(len(categories), 1), rare], dim=1)
    labels = unit_labels(units, categories, monosemanticity, k=20)
    assert labels[0] == ("country", 1.0)
    assert all(label[1] < 0.8 for label in labels[1:4]) and labels[4] is None and labels[5] is None
    assert monosemantic_fraction(labels, 0.8) == pytest.approx(1 / 4)
    fig = features_vs_neurons_figure(labels, labels[1:], 0.8)
    assert "25% monosemantic" in fig.data[0].name and "0% monosemantic" in fig.data[2].name


def test_next_token_categories_are_the_following_token(model, store):
    now, following = row_categories(store, model), row_categories(store, model, next_token=True)
    seq, pos = store.index[0].tolist()
    later = (store.index[:, 0] == seq) & (store.index[:, 1] == pos + 1)
    assert following[0] == now[later][0]
    assert (following == CATEGORY_NAMES.index("special")).any()


def test_other_is_not_a_monosemantic_category():
    assert monosemantic_fraction([("other", 1.0), ("year", 0.9), None], 0.8) == 0.5
    with pytest.raises(ValueError, match="no unit"):
        monosemantic_fraction([None], 0.8)


def test_index_holds_the_given_functions_results(index, store, paris_sae):
    assert isinstance(index, FeatureIndex)
    assert torch.allclose(index.features, encode_relu(store.acts, paris_sae))
    assert torch.allclose(index.density, feature_density(index.features))


def test_features_and_neurons_label_both_on_the_same_tokens(model, store, index):
    neurons = collect_activations(model, "blocks.2.mlp.hook_post", 3000, seed=5)
    feature_labels, neuron_labels = features_and_neurons(index, neurons, monosemanticity, k=2)
    assert len(feature_labels) == 16 and len(neuron_labels) == neurons.acts.shape[1]
    assert feature_labels[7] == ("capital", 1.0)
    same_tokens = row_categories(store, model)  # both kinds of unit are labelled by these tokens' categories
    assert neuron_labels == unit_labels(neurons.acts, same_tokens, monosemanticity, k=2)
    shifted = collect_activations(model, "blocks.2.mlp.hook_post", 3000, seed=6)
    with pytest.raises(ValueError, match="same n_tokens and seed"):
        features_and_neurons(index, shifted, monosemanticity)
