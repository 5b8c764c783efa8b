"""Helpers for chapter 07, automated interpretability: the text and the units' activations, the
explainer interface (offline, or a language model when one is configured), the scoring
pipeline, planted units whose truth is known, and the figures.

The exercises live in the notebook; functions here that need one take it as an argument, so a
learner's own version is what runs.
"""
from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Protocol

import plotly.graph_objects as go
import torch
from tqdm.auto import tqdm

from utils import plots  # noqa: F401  (sets the course's plotly renderers)
from utils.world import generate_text
from utils.world_categories import CATEGORY_NAMES, token_category

MLP_HOOK = "blocks.2.mlp.hook_post"
"""Where the chapter's neurons live: the output of layer 2's MLP nonlinearity."""


# ------------------------------------------------------------------------------------ data

@dataclass
class Corpus:
    """Held-out text of the small world, cut into sequences of equal length.

    ids: [n_seq, seq_len] token ids (no BOS); tokens and categories: the same as strings.
    """
    ids: torch.Tensor
    tokens: list[list[str]]
    categories: list[list[str]]


def world_corpus(model, n_seq: int = 200, seq_len: int = 40, seed: int = 0) -> Corpus:
    """``n_seq`` documents of test-split text, each cut to its first ``seq_len`` tokens."""
    rows: list[torch.Tensor] = []
    batch = 0
    while len(rows) < n_seq:
        for text in generate_text(n_seq, seed=seed * 1000 + batch, split="test"):
            ids = model.to_tokens(text, prepend_bos=False)[0]
            if len(ids) >= seq_len and len(rows) < n_seq:
                rows.append(ids[:seq_len])
        batch += 1
    ids = torch.stack(rows)
    tokens = [model.to_str_tokens(row, prepend_bos=False) for row in ids]
    return Corpus(ids, tokens, [[token_category(t) for t in row] for row in tokens])


def unit_activations(model, ids: torch.Tensor, hook_name: str = MLP_HOOK,
                     unit_fn: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """Every unit's activation on every token: [n_seq, seq_len, n_units].

    A *unit* is any function from the activation at ``hook_name`` to one number per token:
    ``unit_fn=None`` keeps the activation itself (one unit per neuron); an SAE's encoder makes
    one unit per feature. BOS is prepended for the model and dropped from the result.
    """
    bos = torch.full((ids.shape[0], 1), model.tokenizer.bos_token_id, dtype=ids.dtype)
    with torch.no_grad():
        _, cache = model.run_with_cache(torch.cat([bos, ids], dim=1), names_filter=hook_name)
        acts = cache[hook_name][:, 1:]
        return acts if unit_fn is None else unit_fn(acts)


def category_counts(categories: list[list[str]], mask: torch.Tensor | None = None) -> torch.Tensor:
    """How many tokens of each category (in :data:`CATEGORY_NAMES` order), over the tokens where
    ``mask`` [n_seq, seq_len] is True (all tokens if None)."""
    counts = Counter(c for r, row in enumerate(categories) for p, c in enumerate(row)
                     if mask is None or mask[r, p])
    return torch.tensor([counts[name] for name in CATEGORY_NAMES])


# ------------------------------------------------------------------------------- explainers

class Explainer(Protocol):
    """Anything that turns a unit's top records into a short explanation.

    ``tokens``/``categories``: the records' token strings and world categories; ``levels``:
    [n_records, seq_len] activations normalised to integers 0..10. The explanation is a
    comma-separated list of world categories and tokens, the language the simulator reads.
    """

    def explain(self, tokens: list[list[str]], categories: list[list[str]], levels: torch.Tensor) -> str:
        ...


class OfflineExplainer:
    """Names the world category most over-represented where the unit fires.

    ``enrichment`` is the chapter's exercise (smoothed log ratio of counts); ``background`` the
    category counts of all the text. A unit whose best category is a catch-all ("other",
    "punctuation") gets its ``n_tokens`` most over-represented tokens instead (never a comma, which
    separates items, nor a blank token). Only categories
    and tokens seen at least ``min_count`` times where the unit fires (level >= ``threshold``) count.
    """

    CATCH_ALL = {"other", "punctuation", "special"}

    def __init__(self, enrichment: Callable, background: torch.Tensor, token_background: Counter,
                 threshold: int = 5, n_tokens: int = 3, min_count: int = 2):
        self.enrichment, self.background, self.token_background = enrichment, background, token_background
        self.threshold, self.n_tokens, self.min_count = threshold, n_tokens, min_count

    def explain(self, tokens, categories, levels) -> str:
        firing = levels >= self.threshold
        counts = category_counts(categories, firing)
        scores = self.enrichment(counts, self.background, 1.0)
        # a category the unit never fired on can score high only through smoothing: rule it out
        best = CATEGORY_NAMES[int(scores.masked_fill(counts < self.min_count, -torch.inf).argmax())]
        if best not in self.CATCH_ALL:
            return best
        fired = Counter(t.strip() for r, row in enumerate(tokens) for p, t in enumerate(row)
                        if firing[r, p] and t.strip() and "," not in t)  # a comma cannot be an item
        vocab = sorted(set(fired) | set(self.token_background))
        word_scores = self.enrichment(torch.tensor([fired[w] for w in vocab]),
                                      torch.tensor([self.token_background[w] for w in vocab]), 1.0)
        word_scores = word_scores.masked_fill(torch.tensor([fired[w] for w in vocab]) < self.min_count, -torch.inf)
        top = [int(i) for i in word_scores.argsort(descending=True, stable=True)[: self.n_tokens]
               if word_scores[i] > -torch.inf]
        return ", ".join(vocab[i] for i in top)


class ExplainerUnavailable(RuntimeError):
    """No language-model explainer can be reached from here."""


class LanguageModelExplainer:
    """Asks a language model behind an OpenAI-compatible chat endpoint, as Bills et al. did.

    Configure it with ``COURSE_EXPLAINER_URL`` (for example ``http://localhost:8000/v1`` for a
    local server) and ``COURSE_EXPLAINER_MODEL``; ``OPENAI_API_KEY`` is sent if set. The course
    never needs it: the offline explainer does every measurement in the chapter.
    """

    def __init__(self, url: str | None = None, model: str | None = None, timeout: float = 30.0):
        self.url = url or os.environ.get("COURSE_EXPLAINER_URL")
        self.model = model or os.environ.get("COURSE_EXPLAINER_MODEL")
        if not self.url or not self.model:
            raise ExplainerUnavailable(
                "no language-model explainer is configured: set COURSE_EXPLAINER_URL to an "
                "OpenAI-compatible endpoint (e.g. http://localhost:8000/v1) and COURSE_EXPLAINER_MODEL "
                "to its model name. Offline, use OfflineExplainer: the chapter needs nothing else.")
        self.timeout = timeout

    def prompt(self, tokens, categories, levels) -> str:
        """Bills et al.'s format: one 'token<TAB>activation' line per token, records separated."""
        lines = ["We're studying neurons in a language model. Each record lists tokens with the "
                 "neuron's activation (0-10). Explain in a few words what the neuron fires on."]
        for row, level in zip(tokens, levels):
            lines += ["<start>"] + [f"{t}\t{int(v)}" for t, v in zip(row, level)] + ["<end>"]
        return "\n".join(lines + ["Explanation of the neuron's behaviour: the main thing it does is"])

    def explain(self, tokens, categories, levels) -> str:
        body = json.dumps({"model": self.model, "temperature": 0,
                           "messages": [{"role": "user", "content": self.prompt(tokens, categories, levels)}]})
        request = urllib.request.Request(f"{self.url.rstrip('/')}/chat/completions", body.encode(),
                                         {"Content-Type": "application/json",
                                          "Authorization": f"Bearer {os.environ.get('OPENAI_API_KEY', 'none')}"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.load(response)["choices"][0]["message"]["content"].strip()
        except (urllib.error.URLError, OSError) as error:
            raise ExplainerUnavailable(f"could not reach the explainer at {self.url} ({error}); "
                                       "is the server running? Offline, use OfflineExplainer.") from error


# --------------------------------------------------------------------------------- scoring

def _split(acts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The first half of the sequences explains; the second half, never seen by the explainer, scores."""
    half = acts.shape[0] // 2
    return acts[:half], acts[half:]


def random_highlights(levels: torch.Tensor, seed: int) -> torch.Tensor:
    """Fuzzing's wrong highlights: for each record, as many tokens as it has activating ones
    (level >= 1), drawn at random among its non-activating tokens."""
    g = torch.Generator().manual_seed(seed)
    marks = torch.zeros(levels.shape, dtype=torch.bool)
    for r, level in enumerate(levels):
        quiet = (level == 0).nonzero().flatten()
        n = min(int((level >= 1).sum()), len(quiet))
        marks[r, quiet[torch.randperm(len(quiet), generator=g)[:n]]] = True
    return marks


def score_explanation(acts: torch.Tensor, corpus: Corpus, explanation: str, fns: dict,
                      k: int = 10, seed: int = 0) -> dict:
    """Every score of one explanation of one unit, on the held-out half of the corpus.

    acts: [n_seq, seq_len], the unit on the whole corpus. Simulation scores use the k top and k
    random records of the second half (Bills et al.'s "all at once" mix); detection tells the k top
    records from the k weakest; fuzzing tells the top records' true highlights from random ones.
    fns: the chapter's exercises by name.
    """
    _, held = _split(acts)
    offset = acts.shape[0] - held.shape[0]
    top = fns["top_records"](held, k)
    rand = torch.randperm(held.shape[0], generator=torch.Generator().manual_seed(seed))[:k]
    weakest = torch.sort(held.max(dim=1).values, stable=True).indices[:k]

    def simulated(rows):
        return torch.stack([fns["simulate"](corpus.tokens[offset + r], corpus.categories[offset + r], explanation)
                            for r in rows.tolist()])

    rows = torch.cat([top, rand])
    true = fns["normalise_activations"](held[rows], float(held[rows].max())).float()
    sim = simulated(rows)
    detect_sim = torch.cat([sim[:k], simulated(weakest)])
    labels = torch.arange(2 * k) < k
    top_levels = true[:k]
    highlights = torch.cat([top_levels >= 1, random_highlights(top_levels, seed)])
    judged = fns["fuzzing_judgements"](torch.cat([sim[:k], sim[:k]]), highlights)
    return {"explanation": explanation, "true": true, "simulated": sim,
            "correlation": fns["pooled_correlation"](true, sim),
            "per_sequence": fns["per_sequence_correlation"](true, sim),
            "rsquared": fns["rsquared_score"](true, sim),
            "absolute_dev": fns["absolute_dev_explained"](true, sim),
            "detection": fns["balanced_accuracy"](detect_sim.amax(dim=1) > 0, labels),
            "fuzzing": fns["balanced_accuracy"](judged, labels)}


def top_view(acts: torch.Tensor, corpus: Corpus, fns: dict, k: int = 10) -> tuple[list, list, torch.Tensor]:
    """What an explainer sees of a unit: the tokens, categories and levels (0..10) of its k top
    records in the corpus's first half."""
    first, _ = _split(acts)
    top = fns["top_records"](first, k)
    levels = fns["normalise_activations"](first[top], float(first[top].max()))
    rows = top.tolist()
    return [corpus.tokens[r] for r in rows], [corpus.categories[r] for r in rows], levels


def explain_unit(acts: torch.Tensor, corpus: Corpus, explainer: Explainer, fns: dict) -> str:
    """The explainer's explanation of a unit [n_seq, seq_len] from its :func:`top_view`."""
    return explainer.explain(*top_view(acts, corpus, fns))


def score_units(acts: torch.Tensor, corpus: Corpus, explainer: Explainer, fns: dict, units: list[int],
                desc: str = "units") -> list[dict]:
    """Explain and score the ``units`` of ``acts`` [n_seq, seq_len, n_units] that fire; a unit whose
    activation never exceeds 0 is dead and left out. Each result also holds its ``unit``."""
    results = []
    for unit in tqdm(units, desc=desc):
        a = acts[..., unit]
        if a.max() <= 0:
            continue
        explanation = explain_unit(a, corpus, explainer, fns)
        results.append({"unit": unit, **score_explanation(a, corpus, explanation, fns)})
    return results


def mean_interval(values: list[float], n_resamples: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """The mean of ``values`` and a percentile bootstrap interval for it (resampling units)."""
    x = torch.tensor(values, dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    means = x[torch.randint(len(x), (n_resamples, len(x)), generator=g)].mean(dim=1)
    tail = (1 - level) / 2
    low, high = torch.quantile(means, torch.tensor([tail, 1 - tail], dtype=torch.float64))
    return float(x.mean()), float(low), float(high)


# ----------------------------------------------------------------------- planted units

TESTED_CATEGORIES = [c for c in CATEGORY_NAMES if c not in OfflineExplainer.CATCH_ALL]


def planted_unit(corpus: Corpus, category: str, seed: int = 0, noise: float = 0.3) -> torch.Tensor:
    """A unit whose truth we know: it fires on every token of ``category`` with a random strength
    (1 + |N(0, 1)|) and, like real units, also fires weakly at random elsewhere (on a fifth of the
    other tokens, noise * |N(0, 1)|). Returns [n_seq, seq_len]."""
    g = torch.Generator().manual_seed(seed)
    shape = corpus.ids.shape
    member = torch.tensor([[c == category for c in row] for row in corpus.categories])
    strength = 1 + torch.randn(shape, generator=g).abs()
    stray = (torch.rand(shape, generator=g) < 0.2) * noise * torch.randn(shape, generator=g).abs()
    return torch.where(member, strength, stray)


def ground_truth_contest(corpus: Corpus, fns: dict, min_tokens: int = 20) -> list[dict]:
    """For each category with at least ``min_tokens`` tokens in the corpus, plant a unit and score
    the true explanation (the category's name) against every other such category as a distractor."""
    counts = category_counts(corpus.categories)
    present = [c for c in TESTED_CATEGORIES if counts[CATEGORY_NAMES.index(c)] >= min_tokens]
    rows = []
    for i, category in enumerate(present):
        acts = planted_unit(corpus, category, seed=i)
        scores = {c: score_explanation(acts, corpus, c, fns)["correlation"] for c in present}
        best_distractor = max(v for c, v in scores.items() if c != category)
        rows.append({"category": category, "true": scores[category], "best_distractor": best_distractor,
                     "won": scores[category] > best_distractor})
    return rows


# ------------------------------------------------------------------------------- figures

def record_figure(result: dict, corpus_tokens: list[str], record: int = 0, title: str = "") -> go.Figure:
    """True (normalised) and simulated activation along one scored record."""
    x = list(range(len(corpus_tokens)))
    fig = go.Figure([go.Bar(x=x, y=result["true"][record].tolist(), name="true (0-10)"),
                     go.Scatter(x=x, y=result["simulated"][record].tolist(), name="simulated", mode="markers")])
    fig.update_layout(title=title, xaxis=dict(tickvals=x, ticktext=corpus_tokens, tickangle=-60),
                      yaxis_title="activation (0-10)", height=420)
    return fig


def score_histogram(scores: dict[str, list[float]], title: str, x_title: str = "pooled correlation") -> go.Figure:
    """Overlaid histograms of one score for several groups of units (e.g. neurons and features)."""
    fig = go.Figure([go.Histogram(x=v, name=name, opacity=0.6, xbins=dict(start=-0.2, end=1.0, size=0.05),
                                  histnorm="probability") for name, v in scores.items()])
    fig.update_layout(barmode="overlay", title=title, xaxis_title=x_title, yaxis_title="fraction of units", height=420)
    return fig
