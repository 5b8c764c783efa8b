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
from utils.world import NEGATIVE, POSITIVE, POLARITY_WORDS, REVIEW_ITEMS, opinion_prompts

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


def labelled(pos_acts: torch.Tensor, neg_acts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack two classes into (acts, labels) with label 1 for the positive class."""
    labels = torch.cat([torch.ones(len(pos_acts)), torch.zeros(len(neg_acts))]).long()
    return torch.cat([pos_acts, neg_acts]), labels


def accuracy(acts: torch.Tensor, labels: torch.Tensor, w: torch.Tensor, b: torch.Tensor | float) -> float:
    """The fraction of rows a linear classifier (class 1 when acts @ w + b > 0) gets right."""
    return float(((acts @ w + b > 0).long() == labels).float().mean())


# ------------------------------------------------------------------------------- measuring

def verdict_logit_difference(logits: torch.Tensor, model) -> torch.Tensor:
    """logit(" good") - logit(" bad") at the last position of each row of ``logits``."""
    good, bad = (model.to_single_token(POLARITY_WORDS[p]) for p in ("positive", "negative"))
    return logits[:, -1, good] - logits[:, -1, bad]


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


def dose_response(model, layer: int, directions: dict[str, torch.Tensor], alphas: list[float], steered_logits,
                  kl_cost, n_samples: int = 60, new_tokens: int = 6, seed: int = 0) -> list[dict]:
    """Steer with every direction, scaled to norm alpha, at every coefficient, through the
    exercises ``steered_logits`` and ``kl_cost``. Measures the verdict logit difference on
    :data:`VERDICT_PROMPTS` and its cost (KL to the unsteered model there), and the polarity of
    ``n_samples`` seeded continuations of :data:`STEER_PROMPT`, each with its standard error.
    Returns one row per (direction name, alpha)."""
    verdicts = model.to_tokens(VERDICT_PROMPTS)
    clean = steered_logits(model, verdicts, layer, torch.zeros(model.cfg.d_model))
    rows = []
    for name, direction in directions.items():
        unit = direction / direction.norm()
        for alpha in tqdm(alphas, desc=f"steering ({name})"):
            vector = alpha * unit
            logits = steered_logits(model, verdicts, layer, vector)
            logit_mean, logit_se = mean_and_error(verdict_logit_difference(logits, model))
            texts = sample_continuations(model, STEER_PROMPT, n_samples, new_tokens, seed,
                                         lambda tokens: steered_logits(model, tokens, layer, vector))
            pol_mean, pol_se = mean_and_error(torch.tensor([polarity(t) for t in texts]))
            rows.append(dict(direction=name, alpha=alpha, logit_diff=logit_mean, logit_se=logit_se,
                             polarity=pol_mean, polarity_se=pol_se, kl=float(kl_cost(clean, logits)),
                             example=texts[0]))
    return rows


def print_dose_table(rows: list[dict]) -> None:
    """The dose-response rows as an aligned table."""
    print(f"{'direction':<16}{'alpha':>6}{'logit diff':>15}{'polarity':>16}{'KL':>8}")
    for r in rows:
        print(f"{r['direction']:<16}{r['alpha']:>6.0f}{r['logit_diff']:>9.2f} ± {r['logit_se']:.2f}"
              f"{r['polarity']:>10.2f} ± {r['polarity_se']:.2f}{r['kl']:>8.2f}")


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


def orthogonalize_hf_model(hf_model, direction: torch.Tensor, orthogonalize_weights) -> int:
    """Rewrite, in place, every weight of a Hugging Face GPT-NeoX or GPT-2 model that writes into
    the residual stream with ``orthogonalize_weights(tl_name, weight, direction)`` (residual
    dimension last). Returns how many tensors were changed."""
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

def projection_histograms(pos_proj: dict[int, torch.Tensor], neg_proj: dict[int, torch.Tensor],
                          stats: dict[int, float]) -> go.Figure:
    """Per layer: histograms of the two classes' projections onto that layer's direction."""
    layers = sorted(pos_proj)
    fig = make_subplots(rows=1, cols=len(layers),
                        subplot_titles=[f"layer {l}: d = {stats[l]:.1f}" for l in layers])
    for i, layer in enumerate(layers):
        for values, name, colour in ((pos_proj[layer], "positive", "#2a9d8f"), (neg_proj[layer], "negative", "#e76f51")):
            fig.add_trace(go.Histogram(x=values.tolist(), name=name, marker_color=colour, opacity=0.6,
                                       nbinsx=20, showlegend=i == 0, legendgroup=name), 1, i + 1)
    fig.update_layout(barmode="overlay", height=300, title="Projection onto the mean-difference direction (held-out pairs)")
    return fig


def probe_accuracy_figure(table: dict[str, list[float]], layers: list[int]) -> go.Figure:
    """Held-out accuracy per layer for each classifier and control (``table[name][i]`` at layers[i])."""
    fig = go.Figure()
    for name, values in table.items():
        dash = "dot" if "control" in name else None
        fig.add_trace(go.Scatter(x=layers, y=values, mode="lines+markers", name=name, line_dash=dash))
    fig.add_hline(y=0.5, line_color="grey", line_dash="dash")
    fig.update_layout(height=350, xaxis_title="layer (residual stream entering it)", yaxis_title="held-out accuracy",
                      yaxis_range=[0, 1.05], title="Reading polarity: probes and their controls")
    return fig


def dose_response_figure(rows: list[dict]) -> go.Figure:
    """Logit difference and sampled polarity against the steering coefficient, one line per
    direction (the placebo among them), with standard-error bars."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=['logit(" good") - logit(" bad")', "polarity of samples"])
    for name in dict.fromkeys(r["direction"] for r in rows):
        mine = [r for r in rows if r["direction"] == name]
        x = [r["alpha"] for r in mine]
        for col, key in ((1, "logit_diff"), (2, "polarity")):
            fig.add_trace(go.Scatter(x=x, y=[r[key] for r in mine], name=name, legendgroup=name, showlegend=col == 1,
                                     error_y=dict(array=[r[f"{key.split('_')[0]}_se"] for r in mine]),
                                     mode="lines+markers"), 1, col)
    fig.update_xaxes(title_text="steering coefficient alpha")
    fig.update_layout(height=350, title="Dose-response of activation addition")
    return fig
