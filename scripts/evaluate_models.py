"""Measure the behaviours the chapters rely on, on held-out prompts of the small world.

    python scripts/evaluate_models.py                 # every bundled model, printed as JSON
    python scripts/evaluate_models.py --only world-neox

The same functions measure a model during training (a plain Hugging Face causal LM),
write the figures into each ``MODEL_CARD.md`` (``scripts/train_models.py``) and back the
thresholds of ``tests/test_models.py`` (a TransformerLens ``TransformerBridge`` from
``load_model``). Every prompt starts with ``<bos>``, as TransformerLens writes it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from utils import world  # noqa: E402

THRESHOLDS = {
    "ioi_accuracy": 0.95,
    "ioi_logit_diff": 3.0,
    "facts_accuracy": 0.95,
    "greater_than_prob_valid": 0.9,
    "opinions_accuracy": 0.9,
    "induction_loss_ratio": 0.1,  # an upper bound: repeat loss / first-occurrence loss
}


def _is_bridge(model) -> bool:
    return hasattr(model, "run_with_cache")


def _tokenizer(model):
    return model.tokenizer if _is_bridge(model) else model.tokenizer_for_eval


def encode(tokenizer, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """``<bos>`` + tokens of each text, right-padded; returns (tokens, index of each last token)."""
    rows = [[tokenizer.bos_token_id] + tokenizer(t, add_special_tokens=False).input_ids for t in texts]
    width = max(map(len, rows))
    tokens = torch.full((len(rows), width), tokenizer.pad_token_id)
    for i, row in enumerate(rows):
        tokens[i, : len(row)] = torch.tensor(row)
    return tokens, torch.tensor([len(r) - 1 for r in rows])


@torch.no_grad()
def run(model, tokens: torch.Tensor, patterns: bool = False):
    """Logits ``[batch, pos, vocab]`` and, if asked, attention patterns
    ``[batch, layer, head, query, key]``, for either kind of model."""
    if _is_bridge(model):
        if not patterns:
            return model(tokens), None
        logits, cache = model.run_with_cache(tokens, names_filter=lambda n: n.endswith("hook_pattern"))
        return logits, torch.stack([cache["pattern", layer] for layer in range(model.cfg.n_layers)], 1)
    out = model(tokens, output_attentions=patterns)
    return out.logits, torch.stack(out.attentions, 1) if patterns else None


def last_logits(model, prompts: list[str], batch_size: int = 100) -> torch.Tensor:
    """Next-token logits ``[n, vocab]`` after each prompt."""
    tokenizer = _tokenizer(model)
    chunks = []
    for i in range(0, len(prompts), batch_size):
        tokens, last = encode(tokenizer, prompts[i: i + batch_size])
        logits, _ = run(model, tokens)
        chunks.append(logits[torch.arange(len(last)), last].float())
    return torch.cat(chunks)


def accuracy(correct: torch.Tensor) -> float:
    """The share of ``True`` entries, counted exactly: a float32 mean would put 190 of 200 at
    0.94999999, below an "at least 95%" target that it meets."""
    return int(correct.sum()) / correct.numel()


def token_id(tokenizer, answer: str) -> int:
    (index,) = tokenizer(answer, add_special_tokens=False).input_ids
    return index


# IOI is measured on several fresh draws pooled, from seeds no chapter draws with (chapters use
# 0, 1, ...): one draw of 200 said 0.965 where five others said 0.94 to 0.96.
IOI_SEEDS = (101, 102, 103)
IOI_PER_SEED = 400


def evaluation_prompts(family: str, n: int = 200, seed: int = 0) -> list[world.Prompt]:
    """The prompts a family's measure evaluates: the world's held-out test split, none of which
    occurs in the training text (``tests/test_models.py`` checks both). ``facts`` ignores ``n``
    and ``seed``: it asks every held-out (country, attribute) phrasing; ``ioi`` pools
    ``IOI_PER_SEED`` prompts from each of ``IOI_SEEDS``."""
    if family == "facts":
        return world.fact_prompts(None, 0, "test")
    if family == "ioi":
        return [p for s in IOI_SEEDS for p in world.ioi_prompts(IOI_PER_SEED, s, "test")]
    make = {"ioi": world.ioi_prompts, "greater_than": world.greater_than_prompts, "opinions": world.opinion_prompts}
    return make[family](n, seed, "test")


def measure_ioi(model) -> dict:
    """Top-1 accuracy and mean logit difference (indirect object minus subject), pooled over
    the draws of ``IOI_SEEDS``, and the accuracy of each draw."""
    prompts = evaluation_prompts("ioi")
    tok = _tokenizer(model)
    logits = last_logits(model, [p.prompt for p in prompts])
    io = torch.tensor([token_id(tok, p.answer) for p in prompts])
    s = torch.tensor([token_id(tok, p.wrong) for p in prompts])
    correct = logits.argmax(-1) == io
    return {"ioi_accuracy": accuracy(correct),
            "ioi_logit_diff": (logits[torch.arange(len(prompts)), io] - logits[torch.arange(len(prompts)), s]).mean().item(),
            "ioi_accuracy_by_seed": [accuracy(c) for c in correct.split(IOI_PER_SEED)]}


def measure_facts(model) -> dict:
    """Top-1 accuracy on every held-out (country, attribute) phrasing."""
    prompts = evaluation_prompts("facts")
    tok = _tokenizer(model)
    logits = last_logits(model, [p.prompt for p in prompts])
    answers = torch.tensor([token_id(tok, p.answer) for p in prompts])
    return {"facts_accuracy": accuracy(logits.argmax(-1) == answers)}


def measure_greater_than(model, n: int = 200, seed: int = 0) -> dict:
    """Mean probability on valid end years: the two-digit tokens above the start's."""
    prompts = evaluation_prompts("greater_than", n, seed)
    tok = _tokenizer(model)
    probs = last_logits(model, [p.prompt for p in prompts]).softmax(-1)
    years = torch.tensor([token_id(tok, f" {y:02d}") for y in range(100)])
    year_probs = probs[:, years]  # [n, 100]
    starts = torch.tensor([p.fields["start"] for p in prompts])
    valid = torch.arange(100)[None, :] > starts[:, None]
    return {"greater_than_prob_valid": (year_probs * valid).sum(-1).mean().item(),
            "greater_than_prob_years": year_probs.sum(-1).mean().item()}


def measure_opinions(model, n: int = 200, seed: int = 0) -> dict:
    """How often the verdict the model prefers (" good" vs " bad") matches the review."""
    prompts = evaluation_prompts("opinions", n, seed)
    tok = _tokenizer(model)
    logits = last_logits(model, [p.prompt for p in prompts])
    good, bad = token_id(tok, " good"), token_id(tok, " bad")
    says_good = logits[:, good] > logits[:, bad]
    positive = torch.tensor([p.fields["polarity"] == "positive" for p in prompts])
    return {"opinions_accuracy": accuracy(says_good == positive)}


def repeated_tokens(tokenizer, n: int = 50, length: int = 20, seed: int = 0) -> torch.Tensor:
    """``[n, 1 + 2 * length]``: ``<bos>``, ``length`` random words, the same words again."""
    seqs = world.repeated_sequences(n, length, seed, "test")
    ids = torch.tensor([[token_id(tokenizer, w) for w in s] for s in seqs])
    bos = torch.full((n, 1), tokenizer.bos_token_id)
    return torch.cat([bos, ids, ids], 1)


def measure_induction(model, n: int = 50, length: int = 20, seed: int = 0) -> dict:
    """Loss on the first occurrence vs on the repeat of random-word sequences, and the
    induction score of every head: its mean attention from each repeated token to the token
    just after that token's first occurrence."""
    tokens = repeated_tokens(_tokenizer(model), n, length, seed)
    logits, patterns = run(model, tokens, patterns=True)
    losses = torch.nn.functional.cross_entropy(
        logits[:, :-1].float().transpose(1, 2), tokens[:, 1:], reduction="none")  # [n, 2L]
    first = losses[:, 1:length].mean().item()          # predicting words 2..L of the first copy
    repeat = losses[:, length + 1:].mean().item()      # predicting words 2..L of the repeat
    queries = torch.arange(length + 1, 2 * length + 1)
    scores = patterns[:, :, :, queries, queries - length + 1].mean((0, -1))  # [layer, head]
    layer, head = divmod(scores.argmax().item(), scores.shape[1])
    return {"induction_loss_first": first, "induction_loss_repeat": repeat,
            "induction_loss_ratio": repeat / first,
            "induction_score_best": scores.max().item(), "induction_best_head": f"{layer}.{head}",
            "induction_scores": [[round(v, 4) for v in row] for row in scores.tolist()]}


def previous_token_batch(tokenizer, n: int = 16, length: int = 32, seed: int = 0) -> torch.Tensor:
    """``[n, length]`` token ids: ``<bos>`` and the start of held-out documents of the world's text
    (``split="test"``), the first ``n`` long enough."""
    rows = []
    for document in world.generate_text(4 * n, seed=seed, split="test"):
        row = [tokenizer.bos_token_id] + tokenizer(document, add_special_tokens=False).input_ids
        if len(row) >= length:
            rows.append(row[:length])
    return torch.tensor(rows[:n])


def measure_previous_token(model, n: int = 16, length: int = 32, seed: int = 0) -> dict:
    """The previous-token score of every head, as chapter 01 defines it: the attention from each
    token to the one just before it, averaged over held-out text (query positions 1 and on)."""
    _, patterns = run(model, previous_token_batch(_tokenizer(model), n, length, seed), patterns=True)
    scores = patterns.diagonal(offset=-1, dim1=-2, dim2=-1).mean((0, -1))  # [layer, head]
    layer, head = divmod(scores.argmax().item(), scores.shape[1])
    return {"previous_token_score_best": scores.max().item(), "previous_token_best_head": f"{layer}.{head}",
            "previous_token_scores": [[round(v, 4) for v in row] for row in scores.tolist()]}


def measure_all(model, families=("ioi", "facts", "greater_than", "opinions", "induction", "previous_token")) -> dict:
    """Every figure for the families asked."""
    measures = {"ioi": measure_ioi, "facts": measure_facts, "greater_than": measure_greater_than,
                "opinions": measure_opinions, "induction": measure_induction,
                "previous_token": measure_previous_token}
    out = {}
    for family in families:
        out.update(measures[family](model))
    return out


def passes(figures: dict) -> dict:
    """Which thresholds of :data:`THRESHOLDS` the figures meet (only those measured)."""
    out = {}
    for key, bound in THRESHOLDS.items():
        if key in figures:
            out[key] = figures[key] <= bound if key == "induction_loss_ratio" else figures[key] >= bound
    return out


def main() -> None:
    from utils.models import bundled_models, load_model

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="one bundled model's name")
    args = parser.parse_args()
    for name in [args.only] if args.only else bundled_models():
        figures = measure_all(load_model(name))
        figures.pop("induction_scores")
        figures.pop("ioi_accuracy_by_seed")
        figures.pop("previous_token_scores")
        print(json.dumps({name: figures, "passes": passes(figures)}, indent=2))


if __name__ == "__main__":
    main()
