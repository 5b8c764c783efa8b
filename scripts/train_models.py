"""Retrain every bundled model of the course from scratch, deterministically, on a CPU.

    python scripts/train_models.py                      # the whole zoo
    python scripts/train_models.py --only world-neox    # one model

Each model is trained as a plain Hugging Face model (training through the TransformerLens
bridge is several times slower), on text from :mod:`utils.world` (train split only), and
written to ``models/<name>/`` in Hugging Face format: ``config.json``, ``model.safetensors``
(float16, loaded back as float32), tokenizer files, ``training_log.json`` and a
``MODEL_CARD.md`` whose behaviour figures are measured on the shipped weights, through
``load_model``, on held-out prompts (``scripts/evaluate_models.py``).

* ``world-neox``, the course default: GPT-NeoX (Pythia) blocks with MLPs. Rotary positions
  touch only queries and keys, which is what lets induction, and the IOI circuit built on it,
  form within a CPU budget (see :func:`new_rotary_model`). Its held-out IOI prompts ask about
  ten names it never saw in an IOI sentence: with "giving" sentences (where those names do occur
  after "to") at 0.06 and 6,000 steps it answered 0.948 of 1,200 of them; at 0.10, with
  ``ioi_composed`` at 0.33 and 6,500 steps, 0.978 (and 0.12 with narrative at 0.10: 0.943).
* ``world-gpt2``: GPT-2 blocks, whose learned positions are added to the residual stream;
  chapter 01 studies exactly that. It knows facts and opinions but never formed induction. Its
  random sequences are triples (``a b a``, shape 3 of :func:`random_repeat_row`), 90% of the
  first 500 steps with its MLPs silent, which is what gives it a previous-token head. Measured
  here: with induction-style repeats instead (or half of each), its best previous-token score
  on held-out text stayed at 0.35 through step 750; with alternations (``a b a b``), which
  attending to any earlier ``a`` also predicts, it stalled at 0.52.
* ``world-attn-2l``: attention-only (MLP weights and biases zero and frozen, so every MLP
  outputs exactly 0), with checkpoints spanning its induction phase change in
  ``models/world-attn-2l/checkpoints/step_NNNNN/``.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts import evaluate_models as ev  # noqa: E402
from utils import world  # noqa: E402
from utils.models import MODELS_DIR  # noqa: E402
from utils.tokenizer import SPECIAL_TOKENS, build_tokenizer  # noqa: E402

COMMAND = "python scripts/train_models.py --only {name}"


@dataclass(frozen=True)
class Spec:
    """Everything that decides a model: architecture, data and optimisation."""

    n_layer: int
    d_model: int
    n_head: int
    n_ctx: int
    attn_only: bool
    steps: int
    batch_size: int
    lr: float
    warmup: int
    random_repeat_prob: float  # share of sequences that are bare random-token repeats
    eval_every: int
    seed: int = 0
    weight_decay: float = 0.01
    rotary: bool = False  # GPT-NeoX (Pythia) blocks: positions enter only queries and keys
    tied: bool = True  # unembedding = embedding transposed
    rotary_pct: float = 1.0  # share of each head's dimensions that rotary positions rotate
    repeat_warmup: int = 0  # steps at the start whose batches are mostly (WARMUP_REPEAT_SHARE) random repeats
    family_weights: tuple[tuple[str, float], ...] = ()  # sentence families (default world.FAMILY_WEIGHTS)
    mlp_after: int = 0  # MLPs output 0 (output weights zero, frozen) until this step
    repeat_shapes: tuple[int, ...] = (0, 1, 2)  # which shapes of random_repeat_row to draw


SPECS = {
    "world-neox": Spec(n_layer=4, d_model=128, n_head=4, n_ctx=64, attn_only=False, steps=6500, batch_size=32,
                       lr=3e-3, warmup=60, random_repeat_prob=0.2, eval_every=250, rotary=True, rotary_pct=0.25,
                       tied=False, repeat_shapes=(1,), repeat_warmup=1500, mlp_after=1500,
                       family_weights=(("ioi", 0.1), ("ioi_composed", 0.33), ("facts", 0.1), ("greater_than", 0.24),
                                       ("opinions", 0.07), ("review", 0.03), ("list", 0.03), ("narrative", 0.07),
                                       ("giving", 0.10))),
    "world-gpt2": Spec(n_layer=4, d_model=128, n_head=4, n_ctx=64, attn_only=False, steps=2000,
                       batch_size=32, lr=3e-3, warmup=60, random_repeat_prob=0.2, eval_every=250,
                       repeat_shapes=(3,), repeat_warmup=500, mlp_after=500),
    "world-attn-2l": Spec(n_layer=2, d_model=128, n_head=4, n_ctx=64, attn_only=True, steps=2000,
                          batch_size=32, lr=3e-3, warmup=30, random_repeat_prob=0.9, eval_every=25,
                          rotary=True, rotary_pct=0.25, tied=False, repeat_shapes=(1,)),
}
N_CHECKPOINTS = 10
WARMUP_REPEAT_SHARE = 0.9  # share of random repeats in the batches of the first repeat_warmup steps


def world_tokenizer(n_ctx: int):
    """The shared word-level tokenizer: every piece of the world's train text, word pool and
    templates (test templates too, so held-out prompts never meet ``<unk>``)."""
    texts = world.generate_text(3000, seed=12345, split="train") + world.word_pool()
    for family in (world.IOI_TEMPLATES, world.GT_TEMPLATES, world.OPINION_TEMPLATES,
                   *world.FACT_TEMPLATES.values()):
        texts += [t.replace("{", " ").replace("}", " ") for t in family]
    return build_tokenizer(texts, n_ctx)


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------

def random_repeat_row(rng: random.Random, n_ctx: int, vocab: list[int], shapes=(0, 1, 2)) -> list[int]:
    """Random tokens that repeat, in one of four shapes: ``r r`` right after ``<bos>``; a
    segment copied from a random earlier offset; or a short ``r`` repeated until the end
    (``r r r r ...``, which puts the most weight on copying). Lengths and offsets vary, so only
    induction (find the current token earlier, copy its successor) predicts the repeats: no fixed
    positional offset does. Shape 3 is the exception: after a random prefix come triples of fresh
    random tokens, each closing with its first one again (``a b a c d c e f e ...``). The third
    token of a triple is the token before the current one, so only a head that attends to the
    previous token and copies it predicts it; that rewards a previous-token head directly, which
    learned positions in the residual stream otherwise hardly form."""
    body = [rng.choice(vocab) for _ in range(n_ctx - 1)]
    shape = rng.choice(shapes)
    if shape == 0:
        n = rng.randint(5, (n_ctx - 1) // 2)
        body = body[:n] * 2 + body[2 * n:]
    elif shape == 1:
        n = rng.randint(n_ctx // 4, (n_ctx - 1) // 2 - 1)
        a = rng.randint(0, n_ctx - 1 - 2 * n)
        b = rng.randint(a + n, n_ctx - 1 - n)
        body[b: b + n] = body[a: a + n]
    elif shape == 2:
        n = rng.randint(4, 20)
        body = (body[:n] * n_ctx)[: n_ctx - 1]
    else:
        n = rng.randint(0, 20)
        for i in range(n + 2, n_ctx - 1, 3):
            body[i] = body[i - 2]
    return body


def batch(spec: Spec, step: int, tokenizer, vocab: list[int]) -> torch.Tensor:
    """The batch of ``step``: ``[batch_size, n_ctx]`` token ids, each row ``<bos>`` + a
    document (padding with ``<pad>``, which the loss ignores); the same for the same step."""
    rng = random.Random(world._stable_hash("batch", spec.seed, step))
    rows, docs = [], []
    for _ in range(spec.batch_size):
        share = WARMUP_REPEAT_SHARE if step < spec.repeat_warmup else spec.random_repeat_prob
        if rng.random() < share:
            rows.append(random_repeat_row(rng, spec.n_ctx, vocab, spec.repeat_shapes))
        else:
            docs.append(world.generate_document(rng, "train", min_words=spec.n_ctx,
                                                family_weights=dict(spec.family_weights) or None))
    rows += tokenizer(docs, add_special_tokens=False).input_ids if docs else []
    out = torch.full((spec.batch_size, spec.n_ctx), tokenizer.pad_token_id)
    for i, row in enumerate(rows):
        row = [tokenizer.bos_token_id] + row[: spec.n_ctx - 1]
        out[i, : len(row)] = torch.tensor(row)
    return out


# --------------------------------------------------------------------------------------------
# Model and training
# --------------------------------------------------------------------------------------------

def new_rotary_model(spec: Spec, tokenizer):
    """GPT-NeoX (Pythia) blocks with rotary positions on ``spec.rotary_pct`` of each head's
    dimensions: positions reach only the queries and keys, never the residual stream, and the
    unrotated dimensions compare content at any distance.

    What was measured here (2-layer attention-only, 2,000 steps of 90% random repeats): with
    GPT-2's additive positions (sinusoidal or small start, whole or 32-dimensional subspace,
    tied or not) the repeat loss never fell below 0.97 of the first occurrence's; rotating every
    dimension formed a copying circuit that reads 5 to 6 tokens back instead of one; rotating a
    quarter, as Pythia does, with an untied unembedding, formed a textbook induction head (score
    0.03 to 0.96) in a sharp drop after a plateau of about 800 steps."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    torch.manual_seed(spec.seed)
    config = GPTNeoXConfig(
        vocab_size=len(tokenizer), hidden_size=spec.d_model, num_hidden_layers=spec.n_layer,
        num_attention_heads=spec.n_head, intermediate_size=4 * spec.d_model, max_position_embeddings=spec.n_ctx,
        rotary_pct=spec.rotary_pct, use_parallel_residual=False, use_cache=False, tie_word_embeddings=spec.tied,
        attention_dropout=0.0, hidden_dropout=0.0,
        initializer_range=0.8 / spec.d_model ** 0.5, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model = GPTNeoXForCausalLM(config)
    model.set_attn_implementation("eager")
    return model


def new_model(spec: Spec, tokenizer):
    from transformers import GPT2Config, GPT2LMHeadModel

    if spec.rotary:
        model = new_rotary_model(spec, tokenizer)
        if spec.attn_only:
            _freeze_mlps_at_zero(_mlps(model))
        return model
    torch.manual_seed(spec.seed)
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=spec.n_ctx, n_embd=spec.d_model, n_layer=spec.n_layer,
        n_head=spec.n_head, tie_word_embeddings=spec.tied, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, use_cache=False,
        activation_function="gelu",
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        # TransformerLens's default scale, 0.8 / sqrt(d_model), not GPT-2's 0.02: at these small
        # widths 0.02 leaves attention uniform for so long that induction heads form too late.
        initializer_range=0.8 / spec.d_model ** 0.5)
    model = GPT2LMHeadModel(config)
    model.set_attn_implementation("eager")  # attention patterns for the induction score
    # Sinusoidal start for the learned position embeddings (same RMS as the token embeddings):
    # relative offsets such as "the previous token" are then a fixed rotation from the first
    # step, which shortens the plateau before previous-token and induction heads form.
    pos = torch.arange(spec.n_ctx)[:, None] / 10000 ** (torch.arange(0, spec.d_model, 2) / spec.d_model)
    wpe = torch.stack([pos.sin(), pos.cos()], -1).flatten(1) * (2 ** 0.5 * config.initializer_range)
    model.transformer.wpe.weight.data.copy_(wpe)
    if spec.attn_only:
        _freeze_mlps_at_zero(_mlps(model))
    return model


def _freeze_mlps_at_zero(mlps) -> None:
    """Attention-only: zero every MLP weight and bias and freeze them, so each MLP outputs 0."""
    for mlp in mlps:
        for param in mlp.parameters():
            param.data.zero_()
            param.requires_grad_(False)


def _mlps(model) -> list:
    blocks = model.gpt_neox.layers if hasattr(model, "gpt_neox") else model.transformer.h
    return [block.mlp for block in blocks]


def _silence(mlps) -> None:
    """Make each MLP output exactly 0 for now: its output weights and bias zero, everything
    frozen. Its input weights keep their random start, so the output weights get a gradient
    the moment they are unfrozen."""
    for mlp in mlps:
        out = mlp.dense_4h_to_h if hasattr(mlp, "dense_4h_to_h") else mlp.c_proj
        out.weight.data.zero_()
        out.bias.data.zero_()
        for param in mlp.parameters():
            param.requires_grad_(False)


def lr_at(spec: Spec, step: int) -> float:
    """Linear warm-up, then cosine decay to a fiftieth of the peak (a low end steadies the
    last steps: at a tenth, IOI accuracy still swung by 0.05 between evaluations)."""
    if step < spec.warmup:
        return spec.lr * (step + 1) / spec.warmup
    progress = (step - spec.warmup) / max(1, spec.steps - spec.warmup)
    return spec.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress)))


def _families(spec: Spec) -> tuple[str, ...]:
    """What to measure: induction (and previous-token heads) for an attention-only model, every
    behaviour for the others."""
    if spec.attn_only:
        return ("induction", "previous_token")
    return ("ioi", "facts", "greater_than", "opinions", "induction", "previous_token")


def evaluate(model, tokenizer, spec: Spec) -> dict:
    model.eval()
    model.tokenizer_for_eval = tokenizer  # how scripts/evaluate_models.py finds the tokenizer
    figures = ev.measure_all(model, _families(spec))
    model.train()
    return figures


def train(name: str, spec: Spec, tokenizer) -> dict:
    """Train ``spec``'s model from scratch and log the behaviour figures every ``eval_every`` steps.

    A curriculum for the default model: for its first ``repeat_warmup`` steps the batches are
    90% random-token repeats and (until ``mlp_after``) its MLPs output nothing, so it is an
    attention-only model in all but name. Measured here: with MLPs on from the start, four
    layers had not formed an induction head after 2,500 such steps; silenced, they form one at
    about step 1,400, as two attention-only layers do at about 800. Then the MLPs switch on and
    the world's text takes over, and IOI, which is built on copying, follows within 1,000 steps.
    """
    model = new_model(spec, tokenizer)
    vocab = [i for t, i in tokenizer.get_vocab().items() if t not in SPECIAL_TOKENS]
    vocab.sort()
    mlps = _mlps(model)
    if spec.mlp_after and not spec.attn_only:
        _silence(mlps)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=spec.lr, weight_decay=spec.weight_decay, betas=(0.9, 0.98))
    log, states, running = [], {}, []
    start = time.time()
    bar = tqdm(range(spec.steps + 1), desc=name, unit="step")
    for step in bar:
        if step == spec.mlp_after and step and not spec.attn_only:  # switch the MLPs on
            opt.add_param_group({"params": [p for m in mlps for p in m.parameters()]})
            for p in opt.param_groups[-1]["params"]:
                p.requires_grad_(True)
            params += opt.param_groups[-1]["params"]
        if step % spec.eval_every == 0 or step == spec.steps:
            figures = evaluate(model, tokenizer, spec)
            entry = {"step": step, "train_loss": sum(running) / len(running) if running else None,
                     "seconds": round(time.time() - start, 1), **figures}
            log.append(entry)
            running = []
            if spec.attn_only:
                states[step] = {k: v.detach().clone() for k, v in model.state_dict().items()}
            shown = {k: round(v, 3) for k, v in figures.items() if isinstance(v, float)}
            bar.write(f"{name} step {step}: loss {entry['train_loss']} {shown}")
        if step == spec.steps:
            break
        tokens = batch(spec, step, tokenizer, vocab)
        labels = tokens.masked_fill(tokens == tokenizer.pad_token_id, -100)
        for group in opt.param_groups:
            group["lr"] = lr_at(spec, step)
        loss = model(tokens, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        running.append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.3f}")
    return {"model": model, "log": log, "states": states, "seconds": time.time() - start}


# --------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------

def save_folder(model, tokenizer, folder: Path) -> None:
    """Hugging Face format with float16 weights (``load_model`` loads them as float32)."""
    folder.mkdir(parents=True, exist_ok=True)
    model.to(torch.float16).save_pretrained(folder)
    model.to(torch.float32)
    tokenizer.save_pretrained(folder)


def phase_change_checkpoints(log: list[dict], n: int = N_CHECKPOINTS) -> list[int]:
    """About ``n`` logged steps that tell the story of the induction phase change: the plateau
    (from the first step to the last one whose best induction score is below 0.1), the rise (to
    the first step above 0.5) sampled most densely, and what follows, to the last step."""
    steps = [e["step"] for e in log]
    scores = [e["induction_score_best"] for e in log]
    above = next((i for i, s in enumerate(scores) if s > 0.5), None)
    below = max((i for i, s in enumerate(scores[:above]) if s < 0.1), default=None) if above else None
    last = len(steps) - 1
    if below is None:  # no phase change: spread the checkpoints over the whole run
        return [steps[i] for i in sorted(_spread(0, last, n))]
    chosen = _spread(0, below, 3) | _spread(below, above + 1, n - 4) | _spread(above + 1, last, 3)
    return [steps[i] for i in sorted(chosen)]


def _spread(first: int, last: int, k: int) -> set[int]:
    """``k`` indices spread evenly from ``first`` to ``last`` (fewer if the range is short)."""
    return {round(first + (last - first) * j / max(1, k - 1)) for j in range(k)}


def write_card(name: str) -> dict:
    """Measure the shipped weights of ``name`` (through ``load_model``, on held-out prompts) and
    write its ``MODEL_CARD.md`` from them and from its ``training_log.json``."""
    from utils.models import checkpoints, load_model

    folder = MODELS_DIR / name
    record = json.loads((folder / "training_log.json").read_text())
    spec, log = Spec(**record["spec"]), record["log"]
    load_model(name)  # the first load pays for imports and caches
    begin = time.time()
    model = load_model(name)
    load_seconds = time.time() - begin
    figures = ev.measure_all(model, _families(spec))
    checks = ev.passes(figures)
    rows = "\n".join(
        f"| {key} | {value:.4f} | {ev.THRESHOLDS.get(key, '')} | "
        f"{'' if key not in checks else ('pass' if checks[key] else 'FAIL')} |"
        for key, value in figures.items() if isinstance(value, float))
    blocks = (f"GPT-NeoX (Pythia) blocks, with rotary positions on {spec.rotary_pct:.0%} of each head's dimensions"
              if spec.rotary else "GPT-2 blocks, with learned positions added to the residual stream")
    arch = (f"attention-only model ({blocks}; every MLP's weights and biases are zero and frozen, so it "
            "outputs exactly 0)" if spec.attn_only else f"model with MLPs ({blocks}; attention, then MLP)")
    n_params = sum(p.numel() for p in model.parameters())
    composed = (" (from templates, and composed from parts: `ioi_composed`)"
                if "ioi_composed" in dict(spec.family_weights) else "")
    extra = ""
    if spec.attn_only:
        by_step = {e["step"]: e for e in log}
        extra = ("\n## Checkpoints\nIn `checkpoints/step_NNNNN/`, spanning the induction phase change; "
                 f"load one with `load_model(\"{name}\", checkpoint=N)`. Figures recorded during training:\n\n"
                 "| step | best induction score | loss on repeat | training loss |\n|---|---|---|---|\n"
                 + "\n".join(f"| {s} | {by_step[s]['induction_score_best']:.3f} | "
                             f"{by_step[s]['induction_loss_repeat']:.3f} | {by_step[s]['train_loss'] or float('nan'):.3f} |"
                             for s in checkpoints(name)) + "\n")
    triples = tuple(spec.repeat_shapes) == (3,)
    circuit = "a previous-token head" if triples else "the induction circuit"
    repeats = ("random-token triples that close with their first token (`a b a c d c ...` after a random\n"
               "prefix), which only a head attending to the previous token predicts" if triples else
               "bare random-token repeats (random lengths and offsets), which only induction can\npredict")
    curriculum = (f"\nFor the first {spec.mlp_after} steps the MLPs output nothing (output weights zero and frozen):"
                  f" attention alone\nforms {circuit} on the random sequences; then the MLPs switch on (see"
                  " `train`)." if spec.mlp_after and not spec.attn_only else "")
    ioi_draws = (f"IOI accuracy of each draw pooled above (seeds {ev.IOI_SEEDS}, {ev.IOI_PER_SEED} prompts each): "
                 f"{figures['ioi_accuracy_by_seed']}\n\n" if "ioi_accuracy_by_seed" in figures else "")
    card = f"""# {name}

A {spec.n_layer}-layer {arch}, with d_model {spec.d_model}, {spec.n_head} heads,
context {spec.n_ctx}, vocabulary {model.cfg.d_vocab} words, {n_params:,} parameters
(stored as float16, loaded as float32). Trained from scratch on the course's small world.

Retrain it (deterministic, seeded; bitwise equality needs the same torch version, CPU and
thread count):

    {COMMAND.format(name=name)}

## Data
Text from `utils/world.py`, train split only: documents mixing IOI sentences{composed}, facts about
{len(world.COUNTRIES)} countries (capital, language, continent), greater-than year ranges, short and
long reviews, repeated lists, people giving things to each other, and ordinary narrative. A share of {spec.random_repeat_prob:.0%} of the
sequences are {repeats}{f" ({WARMUP_REPEAT_SHARE:.0%} during the first {spec.repeat_warmup} steps, so that {circuit} forms early)" if spec.repeat_warmup else ""}. Family weights: {json.dumps(dict(spec.family_weights) or world.FAMILY_WEIGHTS)}.
Each sequence is `<bos>` + one document, cut at {spec.n_ctx} tokens.

## Training
{spec.steps} steps of AdamW (lr {spec.lr}, betas 0.9/0.98, weight decay {spec.weight_decay}, gradient
clip 1.0), linear warm-up over {spec.warmup} steps then cosine decay to a fiftieth, batch {spec.batch_size}
sequences, seed {spec.seed}, {record['threads']} CPU thread(s). Weights start at TransformerLens's
scale (std 0.8/sqrt(d_model)){"" if spec.rotary else "; the learned position embeddings start sinusoidal"}.{curriculum}
The unembedding is {"tied to" if spec.tied else "separate from"} the embedding.
Wall time: {record['seconds'] / 60:.1f} min (on a 2-core machine shared with other work).
Final training loss (mean of the last {spec.eval_every} steps): {log[-1]['train_loss']:.4f}.
The loss and behaviour figures during training are in `training_log.json`.
Loading it with `load_model("{name}")` took {load_seconds:.2f} s (after imports).
{extra}
## Measured behaviour (shipped weights, through `load_model`, held-out prompts)
Measured by `scripts/evaluate_models.py`; the thresholds are asserted in `tests/test_models.py`.

| figure | value | threshold | |
|---|---|---|---|
{rows}

{ioi_draws}Induction scores by layer and head: {figures['induction_scores']}

Previous-token scores by layer and head (chapter 01's detector, on held-out text): {figures['previous_token_scores']}
"""
    (folder / "MODEL_CARD.md").write_text(card)
    summary = {k: v for k, v in figures.items() if not k.endswith("_scores")}
    print(json.dumps({name: summary, "minutes": round(record["seconds"] / 60, 2),
                      "load_seconds": round(load_seconds, 2), "passes": checks}, indent=1))
    return figures


def ship(name: str, spec: Spec, tokenizer) -> None:
    """Train ``name`` and write its folder: weights, tokenizer, checkpoints, training log."""
    folder = MODELS_DIR / name
    if folder.exists():
        shutil.rmtree(folder)
    result = train(name, spec, tokenizer)
    model = result["model"]
    if spec.attn_only:
        final_state = {k: v.clone() for k, v in model.state_dict().items()}
        for step in phase_change_checkpoints(result["log"]):
            model.load_state_dict(result["states"][step])
            save_folder(model, tokenizer, folder / "checkpoints" / f"step_{step:05d}")
        model.load_state_dict(final_state)
    save_folder(model, tokenizer, folder)
    (folder / "training_log.json").write_text(json.dumps(
        {"spec": asdict(spec), "seconds": round(result["seconds"], 1),
         "threads": torch.get_num_threads(), "log": result["log"]}, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(SPECS), help="retrain one model")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads (default 2; use 1 on a machine busy with other work)")
    parser.add_argument("--cards-only", action="store_true",
                        help="do not train: re-measure the shipped weights and rewrite the cards")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in [args.only] if args.only else list(SPECS):
        if not args.cards_only:
            ship(name, SPECS[name], world_tokenizer(SPECS[name].n_ctx))
        write_card(name)


if __name__ == "__main__":
    main()
