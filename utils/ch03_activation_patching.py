"""Helpers for chapter 03 that are not exercises: clean/corrupted datasets, plots."""
import torch
from torch import Tensor

# ============================================================ part 1: datasets and patching plots (H4)
from dataclasses import dataclass

import plotly.express as px

from utils import world


@dataclass
class PatchingData:
    """A batch of clean prompts and their corrupted twins, aligned token by token.

    clean, corrupted: [batch, pos] token ids (with BOS); answer, wrong: [batch] the token ids
    whose logit difference measures the behaviour; prompts: the world's Prompt objects;
    labels: the token strings of the first clean prompt, for the axes of figures.
    """
    clean: Tensor
    corrupted: Tensor
    answer: Tensor
    wrong: Tensor
    prompts: list
    labels: list


def single_token(model, word: str) -> int:
    """The id of ``word`` (e.g. " Berlin") if the model's tokenizer keeps it as one token."""
    ids = model.to_tokens(word, prepend_bos=False)[0]
    if len(ids) != 1:
        raise ValueError(f"{word!r} is {len(ids)} tokens for this tokenizer ({model.to_str_tokens(word, prepend_bos=False)}); "
                         "patching by logit difference needs single-token answers")
    return int(ids[0])


def aligned_tokens(model, clean: list[str], corrupted: list[str], changed: list[str]) -> tuple[Tensor, Tensor]:
    """Tokenise clean and corrupted prompts and prove that they line up.

    Every prompt must have as many tokens as the first one, in both versions, and the two
    versions of a prompt may differ only at tokens of the word ``changed[i]`` of the clean
    prompt. Raises ValueError naming the first prompt that breaks this.
    """
    rows = []
    for i, (a, b) in enumerate(zip(clean, corrupted, strict=True)):
        ta, tb = model.to_tokens(a)[0], model.to_tokens(b)[0]
        if len(ta) != len(tb) or (rows and len(ta) != len(rows[0][0])):
            raise ValueError(f"prompt {i} does not align: {len(ta)} clean and {len(tb)} corrupted tokens "
                             f"(the first prompt has {len(rows[0][0]) if rows else len(ta)}): {a!r} / {b!r}")
        word_ids = set(model.to_tokens(" " + changed[i].strip(), prepend_bos=False)[0].tolist())
        word_ids |= set(model.to_tokens(changed[i].strip(), prepend_bos=False)[0].tolist())
        differ = (ta != tb).nonzero()[:, 0].tolist()
        if not differ or any(int(ta[p]) not in word_ids for p in differ):
            raise ValueError(f"prompt {i}: clean and corrupted differ at positions {differ}, which should be "
                             f"exactly the tokens of {changed[i]!r}: {a!r} / {b!r}")
        rows.append((ta, tb))
    return torch.stack([a for a, _ in rows]), torch.stack([b for _, b in rows])


def _data(model, prompts, corrupted, changed, answers, wrongs, subject: str | None = None) -> PatchingData:
    """Aligned tokens and answer ids; with ``subject``, the changed position's label is ``subject``
    (the batch's prompts differ there, so the first prompt's word would mislead)."""
    clean, bad = aligned_tokens(model, [p.prompt for p in prompts], corrupted, changed)
    labels = model.to_str_tokens(clean[0])
    if subject is not None:
        labels = [subject if bool(c) else t for t, c in zip(labels, clean[0] != bad[0])]
    return PatchingData(clean, bad, torch.tensor([single_token(model, a) for a in answers]),
                        torch.tensor([single_token(model, w) for w in wrongs]), list(prompts), labels)


def ioi_data(model, n: int, corruption: str = "S", template: int = 0, seed: int = 0, split: str = "train") -> PatchingData:
    """``n`` IOI prompts of one template (so they align), half ABBA and half BABA.

    corruption "S": the second mention of the subject becomes a third name (the sentence no
    longer says who the answer is). corruption "IO": the indirect object becomes a third name
    (the answer changes, the structure does not). answer is the IO, wrong the subject.
    """
    if corruption not in ("S", "IO"):
        raise ValueError(f"corruption must be 'S' or 'IO', not {corruption!r}")
    pool, drawn = [], 40 * n
    while len(pool) < n and drawn <= 40 * 64 * n:  # a draw holds each template by chance: widen it if short
        pool = [p for p in world.ioi_prompts(drawn, seed=seed, split=split) if p.template == template][:n]
        drawn *= 4
    if len(pool) < n:
        raise ValueError(f"only {len(pool)} prompts of template {template} in the {split} split; ask for fewer")
    corrupted = []
    for p in pool:
        f, text = p.fields, world.IOI_TEMPLATES[p.template]
        swap = {f["IO"]: f["C"]} if corruption == "IO" else {}
        corrupted.append(p.corrupted if corruption == "S" else text.format(
            A=swap.get(f["A"], f["A"]), B=swap.get(f["B"], f["B"]), S=f["S"], place=f["place"], object=f["object"]))
    changed = [p.fields["S"] if corruption == "S" else p.fields["IO"] for p in pool]
    return _data(model, pool, corrupted, changed, [p.answer for p in pool], [p.wrong for p in pool])


def facts_data(model, countries: list[str] | None = None, template: int = 0, seed: int = 0) -> PatchingData:
    """"The capital of X is" -> capital of X, corrupted to another country (``wrong`` is its capital).

    countries: the subjects (default: every country of the world whose name and capital are
    single tokens for this model); template: which phrasing of FACT_TEMPLATES["capital"].
    """
    rng = torch.Generator().manual_seed(seed)
    text = world.FACT_TEMPLATES["capital"][template]
    rows = [(c, cap) for c, cap, *_ in world.COUNTRIES if countries is None or c in countries]
    ok = [(c, cap) for c, cap in rows if _is_single(model, " " + c) and _is_single(model, " " + cap)]
    if countries is not None and len(ok) < len(rows):
        raise ValueError(f"some of {countries} or their capitals are not single tokens for this model")
    prompts, corrupted, wrongs = [], [], []
    for country, capital in ok:
        others = [o for o in ok if o[1] != capital]
        other, other_capital = others[int(torch.randint(len(others), (), generator=rng))]
        prompts.append(world.Prompt("facts", text.format(country=country), " " + capital, wrong=" " + other_capital,
                                    corrupted=text.format(country=other), template=template,
                                    fields=dict(country=country, corrupted_country=other)))
        corrupted.append(prompts[-1].corrupted)
        wrongs.append(" " + other_capital)
    return _data(model, prompts, corrupted, [p.fields["country"] for p in prompts],
                 [p.answer for p in prompts], wrongs, subject="<country>")


def one_fact_data(model, country: str = "Germany", template: int = 0) -> PatchingData:
    """One fact, "The capital of Germany is" -> " Berlin", corrupted to every other country whose
    capital differs (one row each), so that a patching result does not hang on one choice."""
    text = world.FACT_TEMPLATES["capital"][template]
    capital = dict((c, cap) for c, cap, *_ in world.COUNTRIES)[country]
    others = [(c, cap) for c, cap, *_ in world.COUNTRIES if cap != capital and _is_single(model, " " + c)
              and _is_single(model, " " + cap)]
    prompt = world.Prompt("facts", text.format(country=country), " " + capital, template=template)
    return _data(model, [prompt] * len(others), [text.format(country=c) for c, _ in others], [country] * len(others),
                 [" " + capital] * len(others), [" " + cap for _, cap in others])


def _is_single(model, word: str) -> bool:
    return len(model.to_tokens(word, prepend_bos=False)[0]) == 1


def greater_than_data(model, n: int, template: int = 0, seed: int = 0, split: str = "train") -> tuple[PatchingData, Tensor]:
    """``n`` greater-than prompts of one template, corrupted to start in "01", and their start
    years ([batch] ints). answer is the year written in the training text; wrong is "01"."""
    pool = [p for p in world.greater_than_prompts(30 * n, seed=seed, split=split) if p.template == template][:n]
    data = _data(model, pool, [p.corrupted for p in pool], [f"{p.fields['start']:02d}" for p in pool],
                 [p.answer for p in pool], [" 01"] * len(pool))
    return data, torch.tensor([p.fields["start"] for p in pool])


def year_tokens(model, century: str = "17") -> Tensor:
    """[100] token ids of the two-digit years "00" ... "99", as they follow a century's digits."""
    ids = [model.to_tokens(f" {century}{y:02d}", prepend_bos=False)[0] for y in range(100)]
    if len({len(i) for i in ids}) != 1 or len(ids[0]) < 2:
        raise ValueError("this tokenizer does not split every year into its century and its two last digits")
    return torch.stack([i[-1] for i in ids])


def ioi_accuracy(model, prompts: list, batch_size: int = 200) -> tuple[float, float]:
    """How often the model answers IOI prompts right: the share whose top next token is the
    indirect object, and the share where the IO's logit beats the subject's. Prompts of equal
    token length run together, so no padding enters the comparison."""
    by_length = {}
    for p in prompts:
        tokens = model.to_tokens(p.prompt)[0]
        by_length.setdefault(len(tokens), []).append((tokens, single_token(model, p.answer), single_token(model, p.wrong)))
    top1 = beats = 0
    for rows in by_length.values():
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            with torch.no_grad():
                final = model(torch.stack([t for t, _, _ in chunk]))[:, -1]
            answer, wrong = torch.tensor([a for _, a, _ in chunk]), torch.tensor([w for _, _, w in chunk])
            top1 += int((final.argmax(-1) == answer).sum())
            beats += int((final.gather(-1, answer[:, None]) > final.gather(-1, wrong[:, None])).sum())
    return top1 / len(prompts), beats / len(prompts)


def changed_mask(data: PatchingData) -> Tensor:
    """[batch, pos] bool: where the clean and corrupted prompts differ (the subject, for facts)."""
    return data.clean != data.corrupted


def strongest_per_row(values: Tensor, labels: list[str], row: str = "layer") -> str:
    """One line per row of a [rows, pos] result: the position with the largest value, and that value."""
    lines = []
    for i, line in enumerate(values):
        pos = int(line.argmax())
        lines.append(f"{row} {i}: position {pos} ({labels[pos].strip()!r}) {line[pos]:.2f}")
    return "\n".join(lines)


def top_heads(values: Tensor, k: int = 5) -> str:
    """The ``k`` largest entries of a [n_layers, n_heads] result, as "layer.head (value)"."""
    flat = values.flatten()
    order = flat.argsort(descending=True)[:k]
    n_heads = values.shape[1]
    return ", ".join(f"{int(i) // n_heads}.{int(i) % n_heads} ({flat[i]:.2f})" for i in order)


def layer_position_figure(values: Tensor, labels: list[str], title: str, *, zmid: float = 0.0, row_name: str = "layer"):
    """A heatmap of [n_layers, pos] values with the token strings along the x axis."""
    fig = px.imshow(values.detach().cpu().numpy(), color_continuous_scale="RdBu", color_continuous_midpoint=zmid,
                    labels=dict(x="position", y=row_name, color="value"), title=title, aspect="auto")
    fig.update_xaxes(tickvals=list(range(len(labels))), ticktext=[f"{t!s}".strip() or "·" for t in labels], tickangle=-45)
    return fig.update_layout(height=320, margin=dict(t=50, b=10))


def layer_head_figure(values: Tensor, title: str, *, zmid: float = 0.0):
    """A heatmap of [n_layers, n_heads] values."""
    fig = px.imshow(values.detach().cpu().numpy(), color_continuous_scale="RdBu", color_continuous_midpoint=zmid,
                    labels=dict(x="head", y="layer", color="value"), title=title, text_auto=".2f")
    return fig.update_layout(height=320, margin=dict(t=50, b=10))


# ============================================================ part 2: discovery helpers and plots (H5)
