"""Checks for chapter 07: automated interpretability.

Public checks draw their inputs from fixed seeds; hidden checks draw fresh ones from torch's
global generator, which the grader seeds for each submission and check. No exercise here takes
a model: units' activations come in as plain tensors, so the checks hold for any model's shape.
"""
import torch

from autograder.ch06_steering import _number
from autograder.core import LearnerError, checks, expect, expect_close, expect_tensor
from utils.world_categories import CATEGORY_NAMES, token_category
from utils.world import word_pool


def _gen(seed: int | None) -> torch.Generator | None:
    """A generator seeded with ``seed``; None (torch's global generator) for fresh draws."""
    return None if seed is None else torch.Generator().manual_seed(seed)


def _fresh_int(low: int, high: int) -> int:
    return int(torch.randint(low, high, ()))


def _unit(n_seq: int, seq_len: int, seed: int | None) -> torch.Tensor:
    """A unit's activations: mostly near zero (some negative, as GELU's), with sparse spikes."""
    g = _gen(seed)
    base = torch.randn(n_seq, seq_len, generator=g) * 0.1
    spikes = (torch.rand(n_seq, seq_len, generator=g) < 0.15) * torch.rand(n_seq, seq_len, generator=g) * 5
    return base + spikes


def _simulated(true: torch.Tensor, seed: int | None) -> torch.Tensor:
    """A simulation that is right on some tokens: 10 where the truth is high, plus misses and false alarms."""
    g = _gen(seed)
    noise = torch.rand(true.shape, generator=g)
    return torch.where((true > 3) ^ (noise < 0.1), 10.0, 0.0)


def _levels(n: int, seq_len: int, seed: int | None) -> torch.Tensor:
    """Normalised activations (integers 0..10) whose records differ a lot in strength."""
    g = _gen(seed)
    scale = torch.rand(n, 1, generator=g) * 10
    return (torch.rand(n, seq_len, generator=g) ** 3 * scale).round()


def _raises_value_error(call) -> bool:
    """Whether ``call()`` raises ValueError (reported as a LearnerError when it is the learner's code)."""
    try:
        call()
    except LearnerError as error:
        return "ValueError" in error.message
    except ValueError:
        return True
    return False


# --- normalise_activations ---------------------------------------------------------------------

@checks("normalise_activations")
def check_levels_from_the_maximum(impl, ref):
    """A unit with negative values, normalised by its own maximum."""
    acts = _unit(4, 9, 0) - 0.2
    expect_close(impl(acts, float(acts.max())), ref(acts, float(acts.max())), atol=0,
                 hint="negative values count as 0; then floor(10 * acts / max_activation) as a long tensor "
                      "(floor, not round: only the maximum itself reaches 10)")


@checks("normalise_activations")
def check_cap_and_silent_unit(impl, ref):
    """A maximum below some values caps them at 10; a maximum <= 0 gives all zeros."""
    acts = _unit(3, 6, 1)
    expect_close(impl(acts, 1.5), ref(acts, 1.5), atol=0,
                 hint="values above max_activation are capped at 10 (the maximum is that of the records shown, "
                      "so other text may go beyond it)")
    expect_close(impl(acts, 0.0), ref(acts, 0.0), atol=0,
                 hint="with max_activation <= 0 the unit never fires: return zeros of acts' shape (dtype long)")


@checks("normalise_activations", hidden=True)
def check_fresh_unit(impl, ref):
    """Fresh activations of another rank and a fresh maximum."""
    acts = _unit(_fresh_int(2, 8), _fresh_int(3, 12), None)[None].expand(2, -1, -1).clone() - torch.rand(())
    top = float(acts.max() * (0.5 + torch.rand(())))
    expect_close(impl(acts, top), ref(acts, top), atol=0, hint="floor(10 * relu(acts) / max_activation), capped at 10")


# --- top_records -------------------------------------------------------------------------------

@checks("top_records")
def check_strongest_sequences_first(impl, ref):
    """Twelve sequences: the five with the largest maxima, strongest first."""
    acts = _unit(12, 7, 2)
    expect_close(impl(acts, 5), ref(acts, 5), atol=0,
                 hint="a sequence's strength is its largest activation (max over dim 1), not its mean; "
                      "return sequence indices, each once, strongest first")


@checks("top_records")
def check_ties_keep_the_lower_index(impl, ref):
    """Sequences with equal maxima come in index order (a stable sort)."""
    acts = torch.zeros(6, 4)
    acts[[1, 3, 4], 2] = 2.0
    acts[5, 0] = 3.0
    expect_close(impl(acts, 4), ref(acts, 4), atol=0,
                 hint="torch.sort(strength, descending=True, stable=True) keeps equal strengths in index order")


@checks("top_records", hidden=True)
def check_fresh_top_records(impl, ref):
    """Fresh activations and k."""
    n = _fresh_int(5, 30)
    acts, k = _unit(n, _fresh_int(3, 15), None), _fresh_int(1, n + 1)
    expect_close(impl(acts, k), ref(acts, k), atol=0, hint="the k sequences with the largest max activation")


# --- quantile_records --------------------------------------------------------------------------

def _with_dead_sequences(n: int, seq_len: int, seed: int | None) -> torch.Tensor:
    acts = _unit(n, seq_len, seed)
    g = _gen(None if seed is None else seed + 1)
    silent = torch.rand(n, generator=g) < 0.3
    acts[silent] = -acts[silent].abs()
    return acts


@checks("quantile_records")
def check_bins_from_strongest(impl, ref):
    """Sixty sequences, some never firing: three bins of four, one generator for all bins."""
    acts = _with_dead_sequences(60, 5, 3)
    expect_close(impl(acts, 3, 4, 0), ref(acts, 3, 4, 0), atol=0,
                 hint="drop sequences whose max is <= 0, order the rest strongest first, torch.tensor_split into "
                      "n_bins groups, and draw torch.randperm(len(group), generator=g)[:per_bin] from each, "
                      "with ONE generator seeded once and used bin after bin")


@checks("quantile_records")
def check_too_small_bins(impl, ref):
    """Asking for more sequences per bin than a bin holds is an error."""
    acts = _with_dead_sequences(10, 4, 4)
    expect(_raises_value_error(lambda: impl(acts, 5, 3, 0)),
           "with 10 sequences in 5 bins, per_bin=3 cannot be drawn without replacement: raise ValueError")


@checks("quantile_records", hidden=True)
def check_fresh_quantiles(impl, ref):
    """Fresh activations, bins and seed."""
    acts = _with_dead_sequences(_fresh_int(40, 90), _fresh_int(3, 9), None)
    args = (acts, _fresh_int(2, 5), _fresh_int(1, 4), _fresh_int(0, 1000))
    expect_close(impl(*args), ref(*args), atol=0, hint="bins of the firing sequences, strongest bin first")


# --- enrichment --------------------------------------------------------------------------------

def _counts(size: int, seed: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    g = _gen(seed)
    background = torch.randint(0, 200, (size,), generator=g)
    top = torch.randint(0, 6, (size,), generator=g) * (torch.rand(size, generator=g) < 0.5)
    return top, background


@checks("enrichment")
def check_smoothed_log_ratio(impl, ref):
    """Twelve categories, some never seen where the unit fires."""
    top, background = _counts(12, 5)
    expect_close(impl(top, background, 1.0), ref(top, background, 1.0), atol=1e-5,
                 hint="normalise each count vector to frequencies AFTER adding alpha: "
                      "(top + alpha) / (top.sum() + alpha * V), the same for background, then the log of their ratio")


@checks("enrichment")
def check_alpha_is_used(impl, ref):
    """A smaller alpha."""
    top, background = _counts(7, 6)
    expect_close(impl(top, background, 0.5), ref(top, background, 0.5), atol=1e-5,
                 hint="use the alpha argument in both numerator and denominator")


@checks("enrichment", hidden=True)
def check_fresh_counts(impl, ref):
    """Fresh counts, size and alpha."""
    top, background = _counts(_fresh_int(3, 40), None)
    alpha = float(0.1 + torch.rand(()) * 2)
    expect_close(impl(top, background, alpha), ref(top, background, alpha), atol=1e-5,
                 hint="log of the ratio of smoothed frequencies")


# --- simulate ----------------------------------------------------------------------------------

_SENTENCE = [" Mary", " lives", " in", " Paris", ",", " the", " capital", " of", " France", "."]


@checks("simulate")
def check_categories_and_tokens(impl, ref):
    """An explanation naming a category and a token, with spaces around its items."""
    categories = [token_category(t) for t in _SENTENCE]
    expect_close(impl(_SENTENCE, categories, " capital ,France"), ref(_SENTENCE, categories, " capital ,France"),
                 atol=0, hint="split the explanation on commas and strip each item; a token matches if its stripped "
                              "text OR its category is an item; predicted tokens get 10.0, the rest 0.0")


@checks("simulate")
def check_whole_items_only(impl, ref):
    """Items match whole tokens and whole category names, never parts of them."""
    categories = [token_category(t) for t in _SENTENCE]
    explanation = "person name, capitals, of the"
    expect_close(impl(_SENTENCE, categories, explanation), ref(_SENTENCE, categories, explanation), atol=0,
                 hint="compare each token with the items as whole strings (item in set_of_items), not with "
                      "substrings of the explanation: 'capitals' is not 'capital', and 'of the' is one item")


@checks("simulate", hidden=True)
def check_fresh_sequence(impl, ref):
    """Fresh words of the world and a fresh explanation."""
    pool = word_pool() + ["the", "was", ",", "."]
    tokens = [" " + pool[int(i)] for i in torch.randint(len(pool), (_fresh_int(5, 30),))]
    categories = [token_category(t) for t in tokens]
    items = [CATEGORY_NAMES[int(i)] for i in torch.randint(len(CATEGORY_NAMES), (2,))]
    explanation = ", ".join(items + [tokens[_fresh_int(0, len(tokens))].strip()])
    expect_close(impl(tokens, categories, explanation), ref(tokens, categories, explanation), atol=0,
                 hint="10.0 where the token or its category is an item of the explanation, else 0.0")


# --- pooled_correlation, per_sequence_correlation, rsquared_score, absolute_dev_explained ---

def _scored(n: int, seq_len: int, seed: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    true = _levels(n, seq_len, seed)
    return true, _simulated(true, None if seed is None else seed + 100)


def _silent_record(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Records of which one is silent in truth and in simulation."""
    true, sim = _scored(5, 7, seed)
    true[2], sim[2] = 0.0, 0.0
    return true, sim


def _same_score(impl, ref, true, sim, hint: str) -> None:
    expect_close(_number(impl(true, sim)), _number(ref(true, sim)), atol=1e-4, hint=hint)


_POOLED_CORRELATION_HINT = ("flatten both [n_records, seq_len] tensors and take ONE Pearson correlation over all tokens, "
         "not the average of per-record correlations")


@checks("pooled_correlation")
def check_pooled_records_of_different_strength(impl, ref):
    """Records whose strengths differ."""
    _same_score(impl, ref, *_scored(6, 8, 7), _POOLED_CORRELATION_HINT)


@checks("pooled_correlation")
def check_pooled_a_silent_record(impl, ref):
    """One record where the unit is silent and the simulator predicts nothing."""
    _same_score(impl, ref, *_silent_record(8), _POOLED_CORRELATION_HINT)


@checks("pooled_correlation", hidden=True)
def check_pooled_fresh_records(impl, ref):
    """Fresh records."""
    _same_score(impl, ref, *_scored(_fresh_int(3, 20), _fresh_int(4, 30), None), _POOLED_CORRELATION_HINT)


_PER_SEQUENCE_CORRELATION_HINT = ("Pearson's correlation within each record, skipping records where either side is constant, "
         "then the mean over the records left")


@checks("per_sequence_correlation")
def check_per_sequence_records_of_different_strength(impl, ref):
    """Records whose strengths differ."""
    _same_score(impl, ref, *_scored(6, 8, 12), _PER_SEQUENCE_CORRELATION_HINT)


@checks("per_sequence_correlation")
def check_per_sequence_a_silent_record(impl, ref):
    """One record where the unit is silent and the simulator predicts nothing."""
    _same_score(impl, ref, *_silent_record(13), _PER_SEQUENCE_CORRELATION_HINT)


@checks("per_sequence_correlation", hidden=True)
def check_per_sequence_fresh_records(impl, ref):
    """Fresh records."""
    _same_score(impl, ref, *_scored(_fresh_int(3, 20), _fresh_int(4, 30), None), _PER_SEQUENCE_CORRELATION_HINT)


_RSQUARED_SCORE_HINT = ("1 - mean((true - simulated)^2) / mean(true^2): the denominator is the mean square around zero, "
         "not the variance around the mean")


@checks("rsquared_score")
def check_rsquared_records_of_different_strength(impl, ref):
    """Records whose strengths differ."""
    _same_score(impl, ref, *_scored(6, 8, 14), _RSQUARED_SCORE_HINT)


@checks("rsquared_score")
def check_rsquared_a_silent_record(impl, ref):
    """One record where the unit is silent and the simulator predicts nothing."""
    _same_score(impl, ref, *_silent_record(15), _RSQUARED_SCORE_HINT)


@checks("rsquared_score", hidden=True)
def check_rsquared_fresh_records(impl, ref):
    """Fresh records."""
    _same_score(impl, ref, *_scored(_fresh_int(3, 20), _fresh_int(4, 30), None), _RSQUARED_SCORE_HINT)


_ABSOLUTE_DEV_EXPLAINED_HINT = ("1 - mean|true - simulated| / mean|true|, over every token, not around the mean")


@checks("absolute_dev_explained")
def check_absolute_dev_records_of_different_strength(impl, ref):
    """Records whose strengths differ."""
    _same_score(impl, ref, *_scored(6, 8, 16), _ABSOLUTE_DEV_EXPLAINED_HINT)


@checks("absolute_dev_explained")
def check_absolute_dev_a_silent_record(impl, ref):
    """One record where the unit is silent and the simulator predicts nothing."""
    _same_score(impl, ref, *_silent_record(17), _ABSOLUTE_DEV_EXPLAINED_HINT)


@checks("absolute_dev_explained", hidden=True)
def check_absolute_dev_fresh_records(impl, ref):
    """Fresh records."""
    _same_score(impl, ref, *_scored(_fresh_int(3, 20), _fresh_int(4, 30), None), _ABSOLUTE_DEV_EXPLAINED_HINT)


@checks("pooled_correlation")
def check_constant_simulation(impl, ref):
    """A simulator that predicts nothing scores 0.0, not NaN."""
    true, _ = _scored(3, 5, 9)
    expect_close(_number(impl(true, torch.zeros_like(true))), _number(ref(true, torch.zeros_like(true))), atol=1e-6,
                 hint="when either side is constant the correlation is undefined: return 0.0")


# --- balanced_accuracy -------------------------------------------------------------------------

@checks("balanced_accuracy")
def check_unbalanced_labels(impl, ref):
    """Eight positives and three negatives."""
    actual = torch.tensor([1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0], dtype=torch.bool)
    predicted = torch.tensor([1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 1], dtype=torch.bool)
    expect_close(_number(impl(predicted, actual)), _number(ref(predicted, actual)), atol=1e-6,
                 hint="(hit rate on positives + correct-rejection rate on negatives) / 2, not plain accuracy")
    expect_close(_number(impl(torch.ones(11, dtype=torch.bool), actual)), _number(0.5), atol=1e-6,
                 hint="a judge that always says yes must score 0.5, however many positives there are")


@checks("balanced_accuracy")
def check_one_class_is_an_error(impl, ref):
    """Labels with no negative example have no balanced accuracy."""
    expect(_raises_value_error(lambda: impl(torch.ones(4, dtype=torch.bool), torch.ones(4, dtype=torch.bool))),
           "with no negative example the rate on negatives is undefined: raise ValueError")


@checks("balanced_accuracy", hidden=True)
def check_fresh_judgements(impl, ref):
    """Fresh labels and predictions."""
    n = _fresh_int(6, 60)
    actual = torch.arange(n) < _fresh_int(1, n)
    predicted = torch.rand(n) < 0.5
    expect_close(_number(impl(predicted, actual)), _number(ref(predicted, actual)), atol=1e-6,
                 hint="mean of the two per-class hit rates")


# --- fuzzing_judgements ------------------------------------------------------------------------

@checks("fuzzing_judgements")
def check_every_highlight_must_be_predicted(impl, ref):
    """Examples with all, some and none of their highlights predicted, and one with no highlight."""
    simulated = torch.tensor([[0, 10, 10, 0], [0, 10, 0, 0], [0, 0, 0, 0], [10, 10, 0, 0]], dtype=torch.float32)
    highlighted = torch.tensor([[0, 1, 1, 0], [0, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)
    expect_close(impl(simulated, highlighted), ref(simulated, highlighted), atol=0,
                 hint="correct only if EVERY highlighted token is predicted (simulated > 0), and an example with no "
                      "highlighted token is never judged correct; return a bool tensor")


@checks("fuzzing_judgements", hidden=True)
def check_fresh_examples(impl, ref):
    """Fresh simulations and highlights."""
    shape = (_fresh_int(4, 20), _fresh_int(3, 12))
    simulated = (torch.rand(shape) < 0.6) * 10.0
    highlighted = torch.rand(shape) < 0.2
    expect_close(impl(simulated, highlighted), ref(simulated, highlighted), atol=0,
                 hint="all highlighted tokens predicted, and at least one highlighted")


# --- bootstrap_interval ------------------------------------------------------------------------

def _interval(value) -> torch.Tensor:
    expect(isinstance(value, (tuple, list)) and len(value) == 2, "return a tuple (low, high) of two floats")
    return torch.stack([_number(v, "each end of the interval") for v in value])


@checks("bootstrap_interval")
def check_resampling_records(impl, ref):
    """Ten records, 200 resamples."""
    true, sim = _scored(10, 8, 10)
    expect_close(_interval(impl(true, sim, 200, 3, 0.95)), _interval(ref(true, sim, 200, 3, 0.95)), atol=1e-5,
                 hint="one torch.randint(n_records, (n_resamples, n_records), generator=g) draw; resample whole "
                      "records (rows of both tensors), score each with pooled_correlation, and take torch.quantile "
                      "at (1 - level) / 2 and 1 - (1 - level) / 2")


@checks("bootstrap_interval")
def check_level_is_used(impl, ref):
    """A 50% interval is narrower than a 95% one."""
    true, sim = _scored(8, 6, 11)
    expect_close(_interval(impl(true, sim, 100, 0, 0.5)), _interval(ref(true, sim, 100, 0, 0.5)), atol=1e-5,
                 hint="the quantiles are (1 - level) / 2 and 1 - (1 - level) / 2: level 0.5 gives 0.25 and 0.75")


@checks("bootstrap_interval", hidden=True)
def check_fresh_bootstrap(impl, ref):
    """Fresh records, resample count and seed."""
    true, sim = _scored(_fresh_int(5, 15), _fresh_int(4, 12), None)
    args = (true, sim, _fresh_int(50, 150), _fresh_int(0, 1000), 0.9)
    expect_close(_interval(impl(*args)), _interval(ref(*args)), atol=1e-5, hint="percentile bootstrap over records")
