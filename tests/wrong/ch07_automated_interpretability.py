"""Realistic wrong versions of chapter 07's exercises."""
import torch

# --- normalise_activations


def rounds_instead_of_floor(acts, max_activation):
    """Rounds to the nearest level, so values just over 0.95 of the maximum already show 10."""
    if max_activation <= 0:
        return torch.zeros(acts.shape, dtype=torch.long)
    return torch.round(10 * acts.clamp_min(0) / max_activation).clamp_max(10).long()


def keeps_negative_values(acts, max_activation):
    """Forgets the ReLU: negative activations become negative levels."""
    if max_activation <= 0:
        return torch.zeros(acts.shape, dtype=torch.long)
    return torch.floor(10 * acts / max_activation).clamp_max(10).long()


def no_cap_and_no_silent_case(acts, max_activation):
    """Divides by the given maximum with no cap and no guard for a unit that never fires."""
    return torch.floor(10 * acts.clamp_min(0) / abs(max_activation) if max_activation else acts * 0).long()


# --- top_records


def ranks_by_mean(acts, k):
    """Ranks sequences by their mean activation instead of their peak."""
    return torch.sort(acts.mean(dim=1), descending=True, stable=True).indices[:k]


def top_tokens_sequences(acts, k):
    """Takes the k top tokens and returns their sequences, so one sequence can come twice."""
    return torch.topk(acts.flatten(), k).indices // acts.shape[1]


def unstable_ties(acts, k):
    """Breaks ties by the higher index."""
    strength = acts.max(dim=1).values
    order = torch.sort(strength.flip(0), descending=True, stable=True).indices
    return (len(strength) - 1 - order)[:k]


# --- quantile_records


def keeps_dead_sequences(acts, n_bins, per_bin, seed):
    """Bins every sequence, the ones that never fire included."""
    order = torch.sort(acts.max(dim=1).values, descending=True, stable=True).indices
    g = torch.Generator().manual_seed(seed)
    return torch.stack([group[torch.randperm(len(group), generator=g)[:per_bin]]
                        for group in torch.tensor_split(order, n_bins)])


def reseeds_every_bin(acts, n_bins, per_bin, seed):
    """A fresh generator with the same seed in each bin, so each bin draws the same ranks."""
    strength = acts.max(dim=1).values
    order = torch.sort(strength, descending=True, stable=True).indices
    order = order[strength[order] > 0]
    rows = []
    for group in torch.tensor_split(order, n_bins):
        if len(group) < per_bin:
            raise ValueError("bin too small")
        rows.append(group[torch.randperm(len(group), generator=torch.Generator().manual_seed(seed))[:per_bin]])
    return torch.stack(rows)


def silently_short_bins(acts, n_bins, per_bin, seed):
    """Never complains: pads a short bin by repeating its sequences."""
    strength = acts.max(dim=1).values
    order = torch.sort(strength, descending=True, stable=True).indices
    order = order[strength[order] > 0]
    g = torch.Generator().manual_seed(seed)
    rows = [group[torch.randperm(len(group), generator=g)].repeat(per_bin)[:per_bin]
            for group in torch.tensor_split(order, n_bins)]
    return torch.stack(rows)


# --- enrichment


def smooths_only_the_counts(top_counts, background_counts, alpha=1.0):
    """Adds alpha to the counts but divides by the unsmoothed totals."""
    top, background = top_counts.double(), background_counts.double()
    return ((top + alpha) / top.sum() / ((background + alpha) / background.sum())).log().float()


def ratio_of_counts(top_counts, background_counts, alpha=1.0):
    """Compares raw counts, not frequencies: every token looks rare where the unit fires."""
    return ((top_counts.double() + alpha) / (background_counts.double() + alpha)).log().float()


def ignores_alpha(top_counts, background_counts, alpha=1.0):
    """Always smooths with 1."""
    size = top_counts.shape[0]
    top, background = top_counts.double(), background_counts.double()
    return (((top + 1) / (top.sum() + size)) / ((background + 1) / (background.sum() + size))).log().float()


# --- simulate


def substring_of_explanation(tokens, categories, explanation):
    """Looks for the token inside the explanation's text, so ' of' matches 'person name, of the'."""
    return torch.tensor([10.0 if token.strip() in explanation or category in explanation else 0.0
                         for token, category in zip(tokens, categories)])


def categories_only(tokens, categories, explanation):
    """Reads only category names from the explanation, never tokens."""
    items = {item.strip() for item in explanation.split(",")}
    return torch.tensor([10.0 if category in items else 0.0 for category in categories])


def unstripped_items(tokens, categories, explanation):
    """Splits on commas but keeps the spaces around items."""
    items = set(explanation.split(","))
    return torch.tensor([10.0 if token in items or category in items else 0.0
                         for token, category in zip(tokens, categories)])


# --- pooled_correlation


def averages_per_sequence(true, simulated):
    """The per-record average, which is not Bills et al.'s score."""
    values = []
    for t, s in zip(true.double(), simulated.double()):
        t, s = t - t.mean(), s - s.mean()
        denominator = (t.square().sum() * s.square().sum()).sqrt()
        if denominator > 0:
            values.append(float((t * s).sum() / denominator))
    return sum(values) / len(values) if values else 0.0


def uncentred_cosine(true, simulated):
    """Forgets to subtract the means: the cosine of the raw vectors."""
    t, s = true.flatten().double(), simulated.flatten().double()
    denominator = t.norm() * s.norm()
    return 0.0 if denominator == 0 else float(t @ s / denominator)


def nan_when_constant(true, simulated):
    """No guard: a constant simulation divides by zero."""
    t, s = true.flatten().double(), simulated.flatten().double()
    t, s = t - t.mean(), s - s.mean()
    return float((t * s).sum() / (t.square().sum() * s.square().sum()).sqrt())


# --- per_sequence_correlation


def pooled_instead(true, simulated):
    """Returns the pooled correlation."""
    return uncentred_cosine(true - true.mean(), simulated - simulated.mean())


def constant_rows_count_as_zero(true, simulated):
    """Averages over every record, counting the undefined ones as 0."""
    values = []
    for t, s in zip(true.double(), simulated.double()):
        t, s = t - t.mean(), s - s.mean()
        denominator = (t.square().sum() * s.square().sum()).sqrt()
        values.append(0.0 if denominator == 0 else float((t * s).sum() / denominator))
    return sum(values) / len(values)


# --- rsquared_score


def variance_around_the_mean(true, simulated):
    """sklearn's r2_score: the denominator is the variance around the mean."""
    true, simulated = true.double(), simulated.double()
    return float(1 - (true - simulated).square().mean() / (true - true.mean()).square().mean())


def squared_correlation(true, simulated):
    """The square of the pooled correlation."""
    t, s = true.flatten().double(), simulated.flatten().double()
    t, s = t - t.mean(), s - s.mean()
    return float(((t * s).sum() / (t.square().sum() * s.square().sum()).sqrt()) ** 2)


# --- absolute_dev_explained


def deviation_around_the_mean(true, simulated):
    """Divides by the mean absolute deviation around the mean."""
    true, simulated = true.double(), simulated.double()
    return float(1 - (true - simulated).abs().mean() / (true - true.mean()).abs().mean())


def divides_by_the_simulation(true, simulated):
    """Divides by mean|simulated| instead of mean|true|."""
    true, simulated = true.double(), simulated.double()
    return float(1 - (true - simulated).abs().mean() / simulated.abs().mean().clamp_min(1e-12))


# --- balanced_accuracy


def plain_accuracy(predicted, actual):
    """The fraction of right answers, which flatters a judge that always says yes."""
    if actual.all() or not actual.any():
        raise ValueError("one class")
    return float((predicted.bool() == actual.bool()).float().mean())


def f1_score(predicted, actual):
    """The F1 score of the positive class."""
    if actual.all() or not actual.any():
        raise ValueError("one class")
    tp = float((predicted & actual).sum())
    return 2 * tp / (float(predicted.sum()) + float(actual.sum()))


def no_error_for_one_class(predicted, actual):
    """Right on two classes, but returns a number when a class is missing."""
    positives, negatives = actual.bool(), ~actual.bool()
    hit = float((predicted & positives).sum()) / max(int(positives.sum()), 1)
    rejection = float((~predicted & negatives).sum()) / max(int(negatives.sum()), 1)
    return (hit + rejection) / 2


# --- fuzzing_judgements


def any_highlight_predicted(simulated, highlighted):
    """Judges correct when ANY highlighted token is predicted."""
    return ((simulated > 0) & highlighted).any(dim=1)


def empty_highlight_is_correct(simulated, highlighted):
    """An example with nothing highlighted is judged correct (all() of nothing is True)."""
    return ((simulated > 0) | ~highlighted).all(dim=1)


# --- bootstrap_interval


def _pooled(true, simulated):
    t, s = true.flatten().double(), simulated.flatten().double()
    t, s = t - t.mean(), s - s.mean()
    denominator = (t.square().sum() * s.square().sum()).sqrt()
    return 0.0 if denominator == 0 else float((t * s).sum() / denominator)


def resamples_tokens(true, simulated, n_resamples=1000, seed=0, level=0.95):
    """Resamples tokens instead of whole records, as if tokens were independent."""
    g = torch.Generator().manual_seed(seed)
    t, s = true.flatten(), simulated.flatten()
    idx = torch.randint(len(t), (n_resamples, len(t)), generator=g)
    scores = torch.tensor([_pooled(t[rows], s[rows]) for rows in idx], dtype=torch.float64)
    tail = (1 - level) / 2
    low, high = torch.quantile(scores, torch.tensor([tail, 1 - tail], dtype=torch.float64))
    return float(low), float(high)


def level_as_quantile(true, simulated, n_resamples=1000, seed=0, level=0.95):
    """Takes the quantiles at 1 - level and level."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(true.shape[0], (n_resamples, true.shape[0]), generator=g)
    scores = torch.tensor([_pooled(true[rows], simulated[rows]) for rows in idx], dtype=torch.float64)
    low, high = torch.quantile(scores, torch.tensor([1 - level, level], dtype=torch.float64))
    return float(low), float(high)


WRONG = {
    "normalise_activations": [rounds_instead_of_floor, keeps_negative_values, no_cap_and_no_silent_case],
    "top_records": [ranks_by_mean, top_tokens_sequences, unstable_ties],
    "quantile_records": [keeps_dead_sequences, reseeds_every_bin, silently_short_bins],
    "enrichment": [smooths_only_the_counts, ratio_of_counts, ignores_alpha],
    "simulate": [substring_of_explanation, categories_only, unstripped_items],
    "pooled_correlation": [averages_per_sequence, uncentred_cosine, nan_when_constant],
    "per_sequence_correlation": [pooled_instead, constant_rows_count_as_zero],
    "rsquared_score": [variance_around_the_mean, squared_correlation],
    "absolute_dev_explained": [deviation_around_the_mean, divides_by_the_simulation],
    "balanced_accuracy": [plain_accuracy, f1_score, no_error_for_one_class],
    "fuzzing_judgements": [any_highlight_predicted, empty_highlight_is_correct],
    "bootstrap_interval": [resamples_tokens, level_as_quantile],
}
