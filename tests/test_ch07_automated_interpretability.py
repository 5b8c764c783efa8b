"""Chapter 07's references reproduce the published definitions, and its pipeline finds planted truth.

OpenAI's ``automated-interpretability`` package (``neuron_explainer``) needs numpy < 2, so its
functions cannot be imported here: hand-computed examples stand for them (``normalize_activations``,
``correlation_score``, ``rsquared_score_from_sequences``, ``absolute_dev_explained_score_from_sequences``,
and the pooling of ``aggregate_scored_sequence_simulations``), and numpy's ``corrcoef``, which their
``correlation_score`` calls, is the oracle for the correlation.
"""
import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pytest
import torch

import solutions.ch07_automated_interpretability as ref
from utils import ch07_automated_interpretability as ch07
from utils.world import ANIMALS, COUNTRIES, NAMES, OBJECTS
from utils.world_categories import token_category

FNS = {name: getattr(ref, name) for name in dir(ref) if not name.startswith("_")}

# A hand example: two records of two tokens. Flattened, true = [0, 10, 0, 0] and simulated =
# [0, 8, 2, 0]; the first record alone is perfectly correlated, the second has a silent truth.
TRUE = torch.tensor([[0.0, 10.0], [0.0, 0.0]])
SIMULATED = torch.tensor([[0.0, 8.0], [2.0, 0.0]])


def test_normalise_activations_by_hand():
    acts = torch.tensor([-1.0, 0.0, 0.05, 0.5, 0.99, 1.0, 2.0])
    assert ref.normalise_activations(acts, 1.0).tolist() == [0, 0, 0, 5, 9, 10, 10]
    assert ref.normalise_activations(acts, -0.5).tolist() == [0] * 7


def test_pooled_correlation_by_hand_and_against_numpy():
    # means 2.5 and 2.5; deviations (-2.5, 7.5, -2.5, -2.5) and (-2.5, 5.5, -0.5, -2.5):
    # sum of products 6.25 + 41.25 + 1.25 + 6.25 = 55; sums of squares 75 and 43.
    assert ref.pooled_correlation(TRUE, SIMULATED) == pytest.approx(55 / (75 * 43) ** 0.5, abs=1e-12)
    g = torch.Generator().manual_seed(0)
    true, sim = torch.rand(7, 9, generator=g), torch.rand(7, 9, generator=g)
    assert ref.pooled_correlation(true, sim) == pytest.approx(np.corrcoef(true.flatten(), sim.flatten())[0, 1], abs=1e-9)


def test_per_sequence_average_differs_from_pooling_by_hand():
    """The second record's truth is constant, so it drops out: the average is record 0's 1.0."""
    assert ref.per_sequence_correlation(TRUE, SIMULATED) == pytest.approx(1.0)
    assert ref.pooled_correlation(TRUE, SIMULATED) == pytest.approx(55 / (75 * 43) ** 0.5)


def test_rsquared_and_absolute_deviation_by_hand():
    # squared errors 0, 4, 4, 0 -> 2; mean square of true 25 -> R² = 1 - 2 / 25
    assert ref.rsquared_score(TRUE, SIMULATED) == pytest.approx(0.92)
    # absolute errors 0, 2, 2, 0 -> 1; mean |true| 2.5 -> 1 - 1 / 2.5
    assert ref.absolute_dev_explained(TRUE, SIMULATED) == pytest.approx(0.6)
    # sklearn's r2_score (variance around the mean, 18.75) would give 1 - 2 / 18.75 instead
    assert ref.rsquared_score(TRUE, SIMULATED) != pytest.approx(1 - 2 / 18.75)


def test_balanced_accuracy_by_hand():
    actual = torch.tensor([True, True, True, False])
    assert ref.balanced_accuracy(torch.tensor([True, True, False, True]), actual) == pytest.approx((2 / 3 + 0) / 2)
    assert ref.balanced_accuracy(torch.ones(4, dtype=torch.bool), actual) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="both positive and negative"):
        ref.balanced_accuracy(actual, torch.ones(4, dtype=torch.bool))


def test_bootstrap_interval_brackets_and_narrows():
    g = torch.Generator().manual_seed(1)
    true = torch.rand(40, 10, generator=g) * 10
    sim = true + torch.randn(40, 10, generator=g) * 4
    point = ref.pooled_correlation(true, sim)
    low, high = ref.bootstrap_interval(true, sim, 400, seed=0)
    narrow_low, narrow_high = ref.bootstrap_interval(true, sim, 400, seed=0, level=0.5)
    assert low < narrow_low < point < narrow_high < high
    assert ref.bootstrap_interval(true, true, 50, seed=0) == pytest.approx((1.0, 1.0))


def test_quantile_records_rejects_small_bins():
    with pytest.raises(ValueError, match="fewer than per_bin"):
        ref.quantile_records(torch.rand(6, 3), 3, 3, 0)


# ------------------------------------------------------------------ the pipeline, model-free

def _synthetic_corpus(n_seq: int = 120, seq_len: int = 16, seed: int = 0) -> ch07.Corpus:
    """Sentences of the world's words and filler, categorised as the chapter categorises them."""
    rng = np.random.default_rng(seed)
    words = NAMES[:20] + [c[0] for c in COUNTRIES[:20]] + [c[1] for c in COUNTRIES[:20]] + OBJECTS + ANIMALS
    filler = ["the", "was", "and", "in", "a", ".", ","]
    tokens = [[str(rng.choice(words)) if rng.random() < 0.4 else str(rng.choice(filler)) for _ in range(seq_len)]
              for _ in range(n_seq)]
    return ch07.Corpus(torch.zeros(n_seq, seq_len, dtype=torch.long), tokens,
                       [[token_category(t) for t in row] for row in tokens])


@pytest.fixture(scope="module")
def corpus():
    return _synthetic_corpus()


def _explainer(corpus):
    return ch07.OfflineExplainer(ref.enrichment, ch07.category_counts(corpus.categories),
                                 Counter(t for row in corpus.tokens for t in row))


@pytest.mark.parametrize("category", ["capital", "person name", "animal"])
def test_offline_explainer_names_a_planted_category(corpus, category):
    acts = ch07.planted_unit(corpus, category, seed=3)
    assert ch07.explain_unit(acts, corpus, _explainer(corpus), FNS) == category


def test_offline_explainer_names_tokens_for_a_word_unit(corpus):
    """A unit that fires on 'the' alone: the best category is 'other', so it names tokens, 'the' first."""
    acts = torch.tensor([[1.0 if t == "the" else 0.0 for t in row] for row in corpus.tokens])
    assert ch07.explain_unit(acts, corpus, _explainer(corpus), FNS).split(", ")[0] == "the"


def test_true_explanation_outscores_distractors(corpus):
    contest = ch07.ground_truth_contest(corpus, FNS, min_tokens=20)
    assert {row["category"] for row in contest} >= {"capital", "country", "person name", "object", "animal"}
    assert all(row["won"] for row in contest)


def test_scores_of_a_true_and_an_empty_explanation(corpus):
    acts = ch07.planted_unit(corpus, "country", seed=0, noise=0.0)
    truth = ch07.score_explanation(acts, corpus, "country", FNS)
    assert truth["correlation"] > 0.9 and truth["detection"] == 1.0 and truth["fuzzing"] == 1.0
    empty = ch07.score_explanation(acts, corpus, "", FNS)
    assert empty["correlation"] == 0.0 and empty["detection"] == 0.5 and empty["fuzzing"] == 0.5


def test_random_highlights_avoid_activating_tokens():
    levels = torch.tensor([[0, 3, 0, 0, 7, 0], [0, 0, 0, 0, 0, 1]])
    marks = ch07.random_highlights(levels, seed=0)
    assert marks.sum(dim=1).tolist() == [2, 1]
    assert not (marks & (levels >= 1)).any()


def test_mean_interval_brackets_the_mean():
    mean, low, high = ch07.mean_interval([0.1, 0.5, 0.2, 0.9, 0.4, 0.3])
    assert mean == pytest.approx(0.4) and low < mean < high


# ------------------------------------------------------------------ language-model explainer

def test_language_model_explainer_absent_offline(monkeypatch):
    monkeypatch.delenv("COURSE_EXPLAINER_URL", raising=False)
    monkeypatch.delenv("COURSE_EXPLAINER_MODEL", raising=False)
    with pytest.raises(ch07.ExplainerUnavailable, match="COURSE_EXPLAINER_URL.*OfflineExplainer"):
        ch07.LanguageModelExplainer()


def test_language_model_explainer_unreachable():
    explainer = ch07.LanguageModelExplainer("http://127.0.0.1:9/v1", "any", timeout=2)
    with pytest.raises(ch07.ExplainerUnavailable, match="could not reach the explainer"):
        explainer.explain([["Paris"]], [["capital"]], torch.tensor([[10]]))


def test_language_model_explainer_speaks_the_openai_chat_format():
    """A local stand-in for an OpenAI-compatible server receives Bills et al.'s prompt."""
    seen = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            seen["path"] = self.path
            seen["body"] = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            reply = json.dumps({"choices": [{"message": {"content": " capital cities "}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        explainer = ch07.LanguageModelExplainer(f"http://127.0.0.1:{server.server_port}/v1", "tiny")
        assert explainer.explain([["in", "Paris"]], [["other", "capital"]], torch.tensor([[0, 10]])) == "capital cities"
    finally:
        server.shutdown()
    assert seen["path"] == "/v1/chat/completions" and seen["body"]["model"] == "tiny"
    assert "Paris\t10" in seen["body"]["messages"][0]["content"]


# ------------------------------------------------------------------ on models

@pytest.fixture(scope="module")
def model():
    from utils.models import cached_model

    return cached_model()


def test_world_corpus_and_unit_activations(model):
    corpus = ch07.world_corpus(model, n_seq=6, seq_len=12, seed=0)
    assert corpus.ids.shape == (6, 12) and len(corpus.tokens) == 6 and all(len(r) == 12 for r in corpus.tokens)
    assert corpus.categories[0] == [token_category(t) for t in corpus.tokens[0]]
    acts = ch07.unit_activations(model, corpus.ids)
    with torch.no_grad():
        bos = model.to_tokens("")[:, :1]
        _, cache = model.run_with_cache(torch.cat([bos, corpus.ids[1:2]], dim=1), names_filter=ch07.MLP_HOOK)
    torch.testing.assert_close(acts[1], cache[ch07.MLP_HOOK][0, 1:13], atol=1e-4, rtol=1e-4)
    doubled = ch07.unit_activations(model, corpus.ids, unit_fn=lambda a: 2 * a[..., :5])
    torch.testing.assert_close(doubled, 2 * acts[..., :5])


def test_unit_activations_on_a_second_model_shape(second_model):
    corpus = ch07.world_corpus(second_model, n_seq=3, seq_len=8, seed=1)
    acts = ch07.unit_activations(second_model, corpus.ids)
    assert acts.shape == (3, 8, second_model.cfg.d_mlp)
