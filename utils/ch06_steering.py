"""Helpers for chapter 06, steering and representation engineering: the contrastive data, the
measurements (accuracy, logit difference, sampled polarity) and the figures.

The exercises live in the notebook; functions here that need one of them take it as an argument,
so a learner's own version is what runs.
"""
from __future__ import annotations

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from tqdm.auto import tqdm

from utils import plots  # noqa: F401  (sets the course's plotly renderers)
from utils.world import COUNTRIES, FACT_TEMPLATES, NEGATIVE, POSITIVE, POLARITY_WORDS, REVIEW_ITEMS, opinion_prompts

STEER_PROMPT = "I watched the film. It was"
"""The prompt steered continuations start from: the model's next word is the verdict."""

VERDICT_PROMPTS = [f"I watched the {item}. Overall I thought it was" for item in REVIEW_ITEMS]
"""Prompts with no adjective whose next token is " good" or " bad": one per review item."""

POSITIVE_WORDS = set(POSITIVE) | {POLARITY_WORDS["positive"].strip()}
NEGATIVE_WORDS = set(NEGATIVE) | {POLARITY_WORDS["negative"].strip()}


# ------------------------------------------------------------------------------------ data

def contrastive_pairs(model, n: int, seed: int = 0, split: str = "train") -> dict:
    """``n`` pairs of reviews that differ only in their adjective, one positive and one negative.

    Returns ``{"pos": [...], "neg": [...], "starts": [...]}``: texts of equal token length
    (the prompt up to, not including, its verdict) and, for each pair, the adjective's position
    in ``model.to_tokens`` (BOS is position 0), where the two texts first differ.
    """
    pos, neg, starts = [], [], []
    for prompt in opinion_prompts(n, seed, split):
        positive = prompt.fields["polarity"] == "positive"
        a, b = (prompt.prompt, prompt.corrupted) if positive else (prompt.corrupted, prompt.prompt)
        tokens_a, tokens_b = model.to_tokens(a)[0], model.to_tokens(b)[0]
        pos.append(a), neg.append(b)
        starts.append(int((tokens_a != tokens_b).nonzero()[0]))
    return {"pos": pos, "neg": neg, "starts": starts}


EUROPE = [row[0] for row in COUNTRIES if row[3] == "Europe"]
ASIA = [row[0] for row in COUNTRIES if row[3] == "Asia"]
HELD_OUT_COUNTRIES = set(EUROPE[2::3] + ASIA[1::2])
"""Every third European country and every other Asian one: the test split's continent pairs use
only these, the train split never does, so a held-out pair asks about countries the direction
never saw."""

CONTINENT_TEMPLATE = "{country} is a country in"
"""The prompt the continent is steered on; the next word is " Europe" or " Asia"."""


def continent_pairs(model, n: int, seed: int = 0, split: str = "train") -> dict:
    """``n`` pairs of the world's fact sentences that differ only in their country, one in Europe
    (``"pos"``) and one in Asia (``"neg"``): any phrasing of any attribute (capital, language,
    continent), so the pair shares its question and differs in where the country lies.

    The train split draws from the countries outside :data:`HELD_OUT_COUNTRIES`, the test split
    from those inside. Returns the same keys as :func:`contrastive_pairs`; ``starts`` is the
    country's position."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    generator = torch.Generator().manual_seed(seed + (10**6 if split == "test" else 0))
    europe, asia = ([c for c in group if (c in HELD_OUT_COUNTRIES) == (split == "test")] for group in (EUROPE, ASIA))
    templates = [t for group in FACT_TEMPLATES.values() for t in group]
    pos, neg, starts = [], [], []
    for _ in range(n):
        template, a, b = (choices[int(torch.randint(len(choices), (), generator=generator))]
                          for choices in (templates, europe, asia))
        pos.append(template.format(country=a)), neg.append(template.format(country=b))
        starts.append(int((model.to_tokens(pos[-1])[0] != model.to_tokens(neg[-1])[0]).nonzero()[0]))
    return {"pos": pos, "neg": neg, "starts": starts}


def labelled(pos_acts: torch.Tensor, neg_acts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack two classes into (acts, labels) with label 1 for the positive class."""
    labels = torch.cat([torch.ones(len(pos_acts)), torch.zeros(len(neg_acts))]).long()
    return torch.cat([pos_acts, neg_acts]), labels


def accuracy(acts: torch.Tensor, labels: torch.Tensor, w: torch.Tensor, b: torch.Tensor | float) -> float:
    """The fraction of rows a linear classifier (class 1 when acts @ w + b > 0) gets right."""
    return float(((acts @ w + b > 0).long() == labels).float().mean())


# ------------------------------------------------------------------------------- measuring

def logit_difference(logits: torch.Tensor, model, answers: tuple[str, str]) -> torch.Tensor:
    """logit(answers[0]) - logit(answers[1]) at the last position of each row of ``logits``."""
    first, second = (model.to_single_token(answer) for answer in answers)
    return logits[:, -1, first] - logits[:, -1, second]


def verdict_logit_difference(logits: torch.Tensor, model) -> torch.Tensor:
    """logit(" good") - logit(" bad") at the last position of each row of ``logits``."""
    return logit_difference(logits, model, (POLARITY_WORDS["positive"], POLARITY_WORDS["negative"]))


def sample_continuations(model, prompt: str, n: int, new_tokens: int, seed: int, next_logits) -> list[str]:
    """``n`` continuations of ``prompt`` sampled at temperature 1 from a seeded generator;
    ``next_logits(tokens)`` gives the (possibly steered) logits [batch, pos, d_vocab]."""
    generator = torch.Generator().manual_seed(seed)
    tokens = model.to_tokens(prompt).repeat(n, 1)
    start = tokens.shape[1]
    for _ in range(new_tokens):
        probs = next_logits(tokens)[:, -1].float().softmax(dim=-1)
        tokens = torch.cat([tokens, torch.multinomial(probs, 1, generator=generator)], dim=1)
    return [model.to_string(row[start:]) for row in tokens]


def polarity(text: str) -> int:
    """+1 if the first opinion word of ``text`` is positive, -1 if negative, 0 if it has none."""
    for word in text.replace(".", " ").replace(",", " ").split():
        if word in POSITIVE_WORDS:
            return 1
        if word in NEGATIVE_WORDS:
            return -1
    return 0


def mean_and_error(values: torch.Tensor) -> tuple[float, float]:
    """The mean and its standard error (sample standard deviation / sqrt(n))."""
    values = values.float()
    return float(values.mean()), float(values.std() / len(values) ** 0.5)


def steering_sweep(model, layer: int, directions: dict[str, torch.Tensor], alphas: list[float], prompts: list[str],
                   answers: tuple[str, str], steered_logits, kl_cost) -> list[dict]:
    """Steer with every direction, scaled to norm alpha, at every coefficient, through the
    exercises ``steered_logits`` and ``kl_cost``: the logit difference between the two
    ``answers`` after ``prompts`` (of equal token length), with its standard error over the
    prompts, and the cost (KL to the unsteered model on them). One row per (direction, alpha)."""
    tokens = model.to_tokens(prompts)
    clean = steered_logits(model, tokens, layer, torch.zeros(model.cfg.d_model))
    rows = []
    for name, direction in directions.items():
        for alpha in tqdm(alphas, desc=f"steering ({name})"):
            vector = alpha * direction / direction.norm()
            logits = steered_logits(model, tokens, layer, vector)
            mean, error = mean_and_error(logit_difference(logits, model, answers))
            rows.append(dict(direction=name, alpha=alpha, vector=vector, logit_diff=mean, logit_se=error,
                             kl=float(kl_cost(clean, logits))))
    return rows


def dose_response(model, layer: int, directions: dict[str, torch.Tensor], alphas: list[float], steered_logits,
                  kl_cost, n_samples: int = 60, new_tokens: int = 6, seed: int = 0) -> list[dict]:
    """The opinion sweep: :func:`steering_sweep` on the verdict after :data:`VERDICT_PROMPTS`,
    plus the polarity of ``n_samples`` seeded continuations of :data:`STEER_PROMPT` steered the
    same way, with its standard error, and one example text per row."""
    answers = (POLARITY_WORDS["positive"], POLARITY_WORDS["negative"])
    rows = steering_sweep(model, layer, directions, alphas, VERDICT_PROMPTS, answers, steered_logits, kl_cost)
    for row in tqdm(rows, desc="sampling"):
        texts = sample_continuations(model, STEER_PROMPT, n_samples, new_tokens, seed,
                                     lambda tokens: steered_logits(model, tokens, layer, row["vector"]))
        row["polarity"], row["polarity_se"] = mean_and_error(torch.tensor([polarity(t) for t in texts]))
        row["example"] = texts[0]
    return rows


def print_dose_table(rows: list[dict]) -> None:
    """Sweep rows as an aligned table (with the samples' polarity when the rows have it)."""
    sampled = "polarity" in rows[0]
    print(f"{'direction':<16}{'alpha':>6}{'logit diff':>15}" + (f"{'polarity':>16}" if sampled else "") + f"{'KL':>8}")
    for r in rows:
        print(f"{r['direction']:<16}{r['alpha']:>6.0f}{r['logit_diff']:>9.2f} ± {r['logit_se']:.2f}"
              + (f"{r['polarity']:>10.2f} ± {r['polarity_se']:.2f}" if sampled else "") + f"{r['kl']:>8.2f}")


def firing_rates(model, pairs: dict, hook_name: str, encode) -> dict[str, torch.Tensor]:
    """How often each SAE feature fires at the adjective: ``{"pos": [d_sae], "neg": [d_sae]}``,
    the fraction of the positive (negative) texts of ``pairs`` whose activation at ``hook_name``,
    read at the pair's adjective position and passed through ``encode``, is above zero."""
    rates = {}
    for side in ("pos", "neg"):
        with torch.no_grad():
            _, cache = model.run_with_cache(model.to_tokens(pairs[side]), names_filter=hook_name)
        at_adjective = cache[hook_name][torch.arange(len(pairs["starts"])), torch.tensor(pairs["starts"])]
        rates[side] = (encode(at_adjective) > 0).float().mean(dim=0)
    return rates


# ----------------------------------------------------------------------------- per layer

def layer_activations(model, pairs: dict[str, dict], layers: list[int], contrastive_activations) -> dict:
    """``acts[layer]["{split}_{side}"]``: the exercise's activations for each side ("pos",
    "neg") of each set of pairs (``pairs = {"train": ..., "test": ...}``) entering each layer."""
    return {layer: {f"{split}_{side}": contrastive_activations(model, data[side], data["starts"], layer)
                    for split, data in pairs.items() for side in ("pos", "neg")} for layer in layers}


def held_out_separation(acts: dict, mean_difference_direction, separation_statistic) -> tuple[dict, dict, dict, dict]:
    """Per layer: the train pairs' mean-difference direction, the held-out pairs' projections on
    its unit vector (positive and negative side), and their separation statistic."""
    directions, pos_proj, neg_proj, stats = {}, {}, {}, {}
    for layer, a in acts.items():
        directions[layer] = mean_difference_direction(a["train_pos"], a["train_neg"])
        unit = directions[layer] / directions[layer].norm()
        pos_proj[layer], neg_proj[layer] = a["test_pos"] @ unit, a["test_neg"] @ unit
        stats[layer] = separation_statistic(pos_proj[layer], neg_proj[layer])
    return directions, pos_proj, neg_proj, stats


def probe_table(acts: dict, train_probe, mean_difference_classifier, seed: int = 0) -> dict[str, list[float]]:
    """Held-out accuracy per layer of the trained probe, the mean-difference classifier, and
    their controls: a probe trained on shuffled labels, and a random direction (seeded by the
    layer) thresholded at the training mean."""
    shuffle = torch.Generator().manual_seed(seed)
    table = {"probe": [], "mean difference": [], "control: probe on shuffled labels": [], "control: random direction": []}
    for layer, a in acts.items():
        x, y = labelled(a["train_pos"], a["train_neg"])
        x_test, y_test = labelled(a["test_pos"], a["test_neg"])
        table["probe"].append(accuracy(x_test, y_test, *train_probe(x, y)))
        table["mean difference"].append(accuracy(x_test, y_test, *mean_difference_classifier(x, y)))
        shuffled = train_probe(x, y[torch.randperm(len(y), generator=shuffle)])
        table["control: probe on shuffled labels"].append(accuracy(x_test, y_test, *shuffled))
        random_w = torch.randn(x.shape[1], generator=torch.Generator().manual_seed(layer))
        table["control: random direction"].append(accuracy(x_test, y_test, random_w, -random_w @ x.mean(0)))
    return table


def print_probe_table(table: dict[str, list[float]], layers: list[int]) -> None:
    """The probe table, a row per classifier and a column per layer."""
    print("held-out accuracy  " + "".join(f"layer {layer:<4}" for layer in layers))
    for name, values in table.items():
        print(f"{name:<36}" + "".join(f"{v:<10.2f}" for v in values))


# ---------------------------------------------------------------------------------- ablation

def write_hook_names(model) -> list[str]:
    """Every hook where a component writes into the residual stream: the embeddings, and each
    layer's attention and MLP outputs."""
    names = ["hook_embed"] + (["hook_pos_embed"] if "hook_pos_embed" in model.hook_dict else [])
    for layer in range(model.cfg.n_layers):
        names += [f"blocks.{layer}.hook_attn_out", f"blocks.{layer}.hook_mlp_out"]
    return names


_WRITES = {  # Hugging Face parameter-name endings that write into the residual stream
    "gpt_neox": [("embed_in.weight", "W_E", False), ("attention.dense.weight", "W_O", True),
                 ("attention.dense.bias", "b_O", False), ("mlp.dense_4h_to_h.weight", "W_out", True),
                 ("mlp.dense_4h_to_h.bias", "b_out", False)],
    "gpt2": [("wte.weight", "W_E", False), ("wpe.weight", "W_pos", False), ("attn.c_proj.weight", "W_O", False),
             ("attn.c_proj.bias", "b_O", False), ("mlp.c_proj.weight", "W_out", False), ("mlp.c_proj.bias", "b_out", False)],
}
"""(name ending, TransformerLens name, whether the residual dimension comes first, as in
nn.Linear's [out, in] weight). W_O arrives with its heads flattened: [n_heads * d_head, d_model]."""


def untie_unembedding(hf_model) -> bool:
    """Give the unembedding its own copy of the weights if it shares them with the embedding.

    GPT-2 ties them: ``lm_head.weight`` *is* ``wte.weight``. The embedding writes into the stream
    and the unembedding reads from it, so orthogonalising the shared tensor would also change a
    reader. Returns whether the two were tied."""
    embedding, unembedding = hf_model.get_input_embeddings(), hf_model.get_output_embeddings()
    tied = unembedding.weight is embedding.weight
    if tied:
        unembedding.weight = torch.nn.Parameter(embedding.weight.detach().clone())
        hf_model.config.tie_word_embeddings = False  # so that saving does not tie them again
    return tied


def orthogonalize_hf_model(hf_model, direction: torch.Tensor, orthogonalize_weights) -> int:
    """Rewrite, in place, every weight of a Hugging Face GPT-NeoX or GPT-2 model that writes into
    the residual stream with ``orthogonalize_weights(tl_name, weight, direction)`` (residual
    dimension last), after untying the unembedding from the embedding (:func:`untie_unembedding`).
    Returns how many tensors were changed."""
    untie_unembedding(hf_model)
    writes = _WRITES[hf_model.config.model_type]
    changed = 0
    with torch.no_grad():
        for name, param in hf_model.named_parameters():
            for ending, tl_name, residual_first in writes:
                if name.endswith(ending):
                    weight = param.T if residual_first else param
                    new = orthogonalize_weights(tl_name, weight, direction)
                    param.copy_(new.T if residual_first else new)
                    changed += 1
    return changed


# ----------------------------------------------------------------------------------- figures

def projection_histograms(pos_proj: dict[int, torch.Tensor], neg_proj: dict[int, torch.Tensor], stats: dict[int, float],
                          names: tuple[str, str] = ("positive", "negative")) -> go.Figure:
    """Per layer: histograms of the two classes' projections (named ``names``) onto that layer's direction."""
    layers = sorted(pos_proj)
    fig = make_subplots(rows=1, cols=len(layers),
                        subplot_titles=[f"layer {l}: d = {stats[l]:.1f}" for l in layers])
    for i, layer in enumerate(layers):
        for values, name, colour in ((pos_proj[layer], names[0], "#2a9d8f"), (neg_proj[layer], names[1], "#e76f51")):
            fig.add_trace(go.Histogram(x=values.tolist(), name=name, marker_color=colour, opacity=0.6,
                                       nbinsx=20, showlegend=i == 0, legendgroup=name), 1, i + 1)
    fig.update_layout(barmode="overlay", height=300, title="Projection onto the mean-difference direction (held-out pairs)")
    return fig


def probe_accuracy_figure(table: dict[str, list[float]], layers: list[int],
                          title: str = "Reading polarity: probes and their controls") -> go.Figure:
    """Held-out accuracy per layer for each classifier and control (``table[name][i]`` at layers[i])."""
    fig = go.Figure()
    for name, values in table.items():
        dash = "dot" if "control" in name else None
        fig.add_trace(go.Scatter(x=layers, y=values, mode="lines+markers", name=name, line_dash=dash))
    fig.add_hline(y=0.5, line_color="grey", line_dash="dash")
    fig.update_layout(height=350, xaxis_title="layer (residual stream entering it)", yaxis_title="held-out accuracy",
                      yaxis_range=[0, 1.05], title=title)
    return fig


def dose_response_figure(rows: list[dict], logit_title: str = 'logit(" good") - logit(" bad")',
                         title: str = "Dose-response of activation addition") -> go.Figure:
    """The logit difference (and, when the rows have it, the samples' polarity) against the
    steering coefficient, one line per direction (the placebo among them), with standard-error bars."""
    panels = [("logit_diff", logit_title)] + ([("polarity", "polarity of samples")] if "polarity" in rows[0] else [])
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[name for _, name in panels])
    for name in dict.fromkeys(r["direction"] for r in rows):
        mine = [r for r in rows if r["direction"] == name]
        x = [r["alpha"] for r in mine]
        for col, (key, _) in enumerate(panels, start=1):
            fig.add_trace(go.Scatter(x=x, y=[r[key] for r in mine], name=name, legendgroup=name, showlegend=col == 1,
                                     error_y=dict(array=[r[f"{key.split('_')[0]}_se"] for r in mine]),
                                     mode="lines+markers"), 1, col)
    fig.update_xaxes(title_text="steering coefficient alpha")
    fig.update_layout(height=350, title=title)
    return fig
