"""Reference solutions for chapter 07: automated interpretability."""
import torch
from torch import Tensor


def normalise_activations(acts: Tensor, max_activation: float) -> Tensor:
    """Activations as integers 0..10, the way Bills et al. (2023) show them to an explainer.

    acts: any shape. Negative values count as 0 (the unit at rest), then each value becomes
    floor(10 * acts / max_activation), capped at 10. If max_activation <= 0 the unit never fires:
    every entry is 0. Returns a LongTensor of acts' shape.
    """
    if max_activation <= 0:
        return torch.zeros(acts.shape, dtype=torch.long)
    return torch.floor(10 * acts.clamp_min(0) / max_activation).clamp_max(10).long()


def top_records(acts: Tensor, k: int) -> Tensor:
    """The ``k`` sequences where the unit fires hardest.

    acts: [n_seq, seq_len], one unit's activation on every token of every sequence. A sequence's
    strength is its largest activation. Returns a LongTensor [k] of sequence indices, strongest
    first; equal strengths keep the lower index first (a stable sort).
    """
    strength = acts.max(dim=1).values
    return torch.sort(strength, descending=True, stable=True).indices[:k]


def quantile_records(acts: Tensor, n_bins: int, per_bin: int, seed: int) -> Tensor:
    """Sequences sampled across the whole range of the unit's activation, not only its top.

    acts: [n_seq, seq_len]. Order the sequences by their largest activation as top_records does
    (strongest first), keep those whose largest activation is > 0, and split that ordered list
    into ``n_bins`` contiguous groups with torch.tensor_split (bin 0 the strongest). From each bin
    in turn, draw ``per_bin`` sequences without replacement: the first ``per_bin`` entries of
    torch.randperm(len(bin), generator=g), with ONE generator g = torch.Generator().manual_seed(seed)
    used for all bins in order. Returns a LongTensor [n_bins, per_bin] of sequence indices.
    Raises ValueError if a bin holds fewer than ``per_bin`` sequences.
    """
    strength = acts.max(dim=1).values
    order = torch.sort(strength, descending=True, stable=True).indices
    order = order[strength[order] > 0]
    g = torch.Generator().manual_seed(seed)
    rows = []
    for group in torch.tensor_split(order, n_bins):
        if len(group) < per_bin:
            raise ValueError(f"a bin holds {len(group)} sequences, fewer than per_bin={per_bin}")
        rows.append(group[torch.randperm(len(group), generator=g)[:per_bin]])
    return torch.stack(rows)


def enrichment(top_counts: Tensor, background_counts: Tensor, alpha: float = 1.0) -> Tensor:
    """How over-represented each kind of token is where the unit fires, as a smoothed log ratio.

    top_counts: [V], how often each token (or category) occurs among the unit's activating
    tokens; background_counts: [V], how often it occurs in all the text. With add-alpha smoothing,
    p_top = (top + alpha) / (top.sum() + alpha * V) and likewise p_background. Returns
    log(p_top / p_background), [V] float: positive where the unit prefers that kind of token.
    """
    size = top_counts.shape[0]
    top, background = top_counts.double(), background_counts.double()
    p_top = (top + alpha) / (top.sum() + alpha * size)
    p_background = (background + alpha) / (background.sum() + alpha * size)
    return (p_top / p_background).log().float()


def simulate(tokens: list[str], categories: list[str], explanation: str) -> Tensor:
    """The offline simulator: which tokens does an explanation say the unit fires on?

    tokens: the sequence's token strings; categories: each token's world category (same length).
    An explanation is a comma-separated list of items, each a category name ("capital") or a
    token ("Paris"); items are stripped of surrounding spaces and empty items ignored. Token i is
    predicted 10.0 if tokens[i] (stripped) or categories[i] is one of the items, else 0.0
    (case-sensitive). Returns a float32 tensor [len(tokens)].
    """
    items = {item.strip() for item in explanation.split(",") if item.strip()}
    return torch.tensor([10.0 if token.strip() in items or category in items else 0.0
                         for token, category in zip(tokens, categories)])


def pooled_correlation(true: Tensor, simulated: Tensor) -> float:
    """Bills et al.'s explanation score: one correlation over every token of every record.

    true, simulated: [n_records, seq_len]. Flatten both and return Pearson's correlation of all
    n_records * seq_len pairs. If either side is constant the correlation is undefined: return 0.0
    (a simulation that predicts nothing explains nothing).
    """
    x, y = true.flatten().double(), simulated.flatten().double()
    x, y = x - x.mean(), y - y.mean()
    denominator = (x.square().sum() * y.square().sum()).sqrt()
    return 0.0 if denominator == 0 else float((x * y).sum() / denominator)


def per_sequence_correlation(true: Tensor, simulated: Tensor) -> float:
    """The tempting alternative: the correlation within each record, averaged over records.

    true, simulated: [n_records, seq_len]. Compute Pearson's correlation of each row pair, skip
    the rows where either side is constant, and return the mean of the rest (0.0 if none is left).
    """
    values = [pooled_correlation(t, s) for t, s in zip(true, simulated)
              if t.max() > t.min() and s.max() > s.min()]
    return sum(values) / len(values) if values else 0.0


def rsquared_score(true: Tensor, simulated: Tensor) -> float:
    """Bills et al.'s R²: 1 - mean((true - simulated)²) / mean(true²), pooled over every token.

    true, simulated: tensors of the same shape. The denominator is the mean square around ZERO,
    not the variance around the mean, as their scoring code defines it.
    """
    true, simulated = true.double(), simulated.double()
    return float(1 - (true - simulated).square().mean() / true.square().mean())


def absolute_dev_explained(true: Tensor, simulated: Tensor) -> float:
    """Absolute deviation explained: 1 - mean|true - simulated| / mean|true|, pooled over tokens.

    true, simulated: tensors of the same shape.
    """
    true, simulated = true.double(), simulated.double()
    return float(1 - (true - simulated).abs().mean() / true.abs().mean())


def balanced_accuracy(predicted: Tensor, actual: Tensor) -> float:
    """The score of a yes/no judge: the mean of its hit rate on positives and on negatives.

    predicted, actual: bool tensors [n]. Returns (TP / (TP + FN) + TN / (TN + FP)) / 2, so a judge
    that always says yes scores 0.5 however many positives there are. Raises ValueError if
    ``actual`` has no positive or no negative example.
    """
    positives, negatives = actual.bool(), ~actual.bool()
    if not positives.any() or not negatives.any():
        raise ValueError("balanced accuracy needs both positive and negative examples")
    hit_rate = (predicted.bool() & positives).sum() / positives.sum()
    correct_rejection = (~predicted.bool() & negatives).sum() / negatives.sum()
    return float((hit_rate + correct_rejection) / 2)


def fuzzing_judgements(simulated: Tensor, highlighted: Tensor) -> Tensor:
    """The offline judge of fuzzing: is each example's highlighting what the explanation predicts?

    simulated: [n, seq_len], the simulator's prediction for each example; highlighted: bool
    [n, seq_len], the tokens marked in each example. Example i is judged correctly highlighted
    when it has at least one highlighted token and every highlighted token has simulated > 0.
    Returns a bool tensor [n].
    """
    marked = highlighted.bool()
    predicted_or_unmarked = (simulated > 0) | ~marked
    return predicted_or_unmarked.all(dim=1) & marked.any(dim=1)


def bootstrap_interval(true: Tensor, simulated: Tensor, n_resamples: int = 1000, seed: int = 0,
                       level: float = 0.95) -> tuple[float, float]:
    """A percentile bootstrap interval for the pooled correlation, resampling whole records.

    true, simulated: [n_records, seq_len]. With g = torch.Generator().manual_seed(seed), draw
    idx = torch.randint(n_records, (n_resamples, n_records), generator=g); resample r keeps the
    records idx[r] (the same rows of both) and scores them with pooled_correlation. Returns the
    (1 - level) / 2 and 1 - (1 - level) / 2 quantiles of the n_resamples scores (torch.quantile
    of a float64 tensor, linear interpolation) as two floats (low, high).
    """
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(true.shape[0], (n_resamples, true.shape[0]), generator=g)
    scores = torch.tensor([pooled_correlation(true[rows], simulated[rows]) for rows in idx], dtype=torch.float64)
    tail = (1 - level) / 2
    low, high = torch.quantile(scores, torch.tensor([tail, 1 - tail], dtype=torch.float64))
    return float(low), float(high)
