"""Retrain the SAE that ships with chapter 05, measure it on held-out text, and write its card.

    python scripts/train_sae.py

A ReLU + L1 SAE with an 8x dictionary on world-neox's residual stream entering layer 2, trained
with the chapter's reference exercises (solutions/), so the shipped SAE is exactly what the
chapter teaches. Deterministic: one thread, seeded data, initialisation and batches. Writes
models/saes/<name>/: cfg.json and sae_weights.safetensors (SAELens's format), training_log.json
and MODEL_CARD.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from solutions.ch05_sparse_autoencoders import (ce_loss_recovered, decode, encode_relu, explained_variance,  # noqa: E402
                                                feature_density, kl_divergence, normalisation_factor, sae_loss)
from utils import ch05_sae as sae  # noqa: E402
from utils.models import load_model  # noqa: E402

MODEL = "world-neox"
HOOK = "blocks.2.hook_resid_pre"
NAME = "world-neox-resid2-relu"


def evaluate(model, params: dict, train_mean: torch.Tensor, n_tokens: int) -> dict:
    """The card's figures on held-out (test-split) text, with the chapter's metric references."""
    held_out = sae.collect_activations(model, HOOK, n_tokens, seed=1, split="test")
    features = encode_relu(held_out.acts, params)
    ev = explained_variance(held_out.acts, decode(features, params))
    density = feature_density(features)
    runs = sae.splice_metrics(model, held_out.tokens, HOOK, {
        "clean": (None, False), "sae": (sae.sae_replacement(params, encode_relu, decode), False),
        "zero": (torch.zeros_like, True), "mean": (lambda a: train_mean.expand_as(a), False)}, kl_divergence)
    loss = {name: r["loss"] for name, r in runs.items()}
    return {
        "eval_tokens": len(held_out.acts), "l0": float((features != 0).sum(dim=-1).float().mean()),
        "explained_variance": ev, "fvu": 1 - ev,
        "ce_loss_clean": loss["clean"], "ce_loss_sae": loss["sae"], "ce_loss_zero_ablated": loss["zero"],
        "ce_loss_mean_ablated": loss["mean"], "loss_added_nats": loss["sae"] - loss["clean"],
        "ce_recovered_vs_zero": ce_loss_recovered(loss["clean"], loss["sae"], loss["zero"]),
        "ce_recovered_vs_mean": ce_loss_recovered(loss["clean"], loss["sae"], loss["mean"]),
        "kl_sae": runs["sae"]["kl"], "kl_zero_ablated": runs["zero"]["kl"],
        "kl_score": ce_loss_recovered(0.0, runs["sae"]["kl"], runs["zero"]["kl"]),
        "dead_fraction": float((density == 0).float().mean()),
        "density_median": float(density.median()), "density_max": float(density.max()),
        "dense_fraction": float((density > 0.1).float().mean()),
        "rare_fraction": float(((density > 0) & (density < 1e-3)).float().mean()),
    }


CARD = """# {name}

A sparse autoencoder for `{model}`'s residual stream entering layer 2 (`{hook}`): ReLU
encoder, L1 penalty, {d_sae} features for a {d_in}-dimensional stream ({expansion}x). Saved in
SAELens's format (`cfg.json`, `sae_weights.safetensors`): `sae_lens.SAE.load_from_disk` loads
it, and `utils.ch05_sae.load_sae("{name}")` gives the chapter's dict of tensors.

Retrain it (deterministic: one thread, seeded; bitwise equality needs the same torch version
and CPU):

    python scripts/train_sae.py

## Data
{train_tokens:,} tokens of world text (`utils.world.generate_text`, train split), one document
per sequence cut at the model's context of 64, BOS skipped, the bare random-word repeat
documents left out (the model saw them in training, but an SAE spends features on "the next
word is random" there). Activations were scaled by {factor:.4f} so their mean norm is
sqrt(d_in) (SAELens's `expected_average_only_in`) and the factor was folded into the saved
weights, which read and write unscaled activations (`normalize_activations: "none"`).

## Training
{steps:,} steps of Adam (lr {lr}) at batch {batch_size:,}, loss = MSE summed over d_in + L1
coefficient {l1} times the decoder-norm-weighted L1 of the features (SAELens's standard
training loss, the chapter's `sae_loss`), decoder rows renormalised to unit length every step,
dead features (silent for {resample_every} steps) resampled toward badly reconstructed inputs at
every {resample_every} steps in the first half ({resampled} resampled in all). Seed {seed}.
Wall time: {train_seconds:.0f} s training, {collect_seconds:.0f} s collecting activations (1
thread{busy}). The loss, L0 and dead fraction during training are in `training_log.json`.

## Measured on held-out text
{eval_tokens:,} tokens of test-split world text (held-out templates and names), with the
chapter's metric references, as SAELens's evals define them:

| figure | value |
|---|---|
| L0 (features active per token) | {l0:.2f} |
| explained variance (around the mean) | {explained_variance:.4f} |
| fraction of variance unexplained | {fvu:.4f} |
| CE loss, clean | {ce_loss_clean:.4f} |
| CE loss, SAE spliced in | {ce_loss_sae:.4f} |
| CE loss, zero-ablated | {ce_loss_zero_ablated:.4f} |
| CE loss, mean-ablated | {ce_loss_mean_ablated:.4f} |
| loss added by the SAE (nats) | {loss_added_nats:+.4f} |
| CE loss recovered vs zero ablation | {ce_recovered_vs_zero:.4f} |
| CE loss recovered vs mean ablation | {ce_recovered_vs_mean:.4f} |
| KL(clean, SAE) / KL(clean, zero-ablated) | {kl_sae:.4f} / {kl_zero_ablated:.4f} |
| KL score | {kl_score:.4f} |
| dead fraction (never fire on these tokens) | {dead_fraction:.4f} |
| feature density: median / max | {density_median:.4f} / {density_max:.4f} |
| features firing on > 10% / < 0.1% of tokens | {dense_fraction:.4f} / {rare_fraction:.4f} |

Zero ablation replaces the activation at every position, BOS included, as SAELens's evals do;
mean ablation puts the training tokens' mean activation at every position but BOS. Both leave
the model far worse than clean ({ce_loss_zero_ablated:.2f} and {ce_loss_mean_ablated:.2f} nats
against {ce_loss_clean:.2f}), so "CE recovered" flatters the SAE against either: the loss added,
in nats, is the honest figure beside it.
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--l1", type=float, default=2.0)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--expansion", type=int, default=8)
    parser.add_argument("--train-tokens", type=int, default=200_000)
    parser.add_argument("--eval-tokens", type=int, default=20_000)
    parser.add_argument("--resample-every", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default=NAME)
    parser.add_argument("--out", type=Path, default=sae.SAES_DIR, help="folder that receives <name>/")
    parser.add_argument("--busy", default="", help="a note for the card when the machine was shared")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    model = load_model(MODEL)
    started = time.perf_counter()
    store = sae.collect_activations(model, HOOK, args.train_tokens, seed=args.seed)
    collect_seconds = time.perf_counter() - started
    factor = normalisation_factor(store.acts)
    started = time.perf_counter()
    params, log = sae.train_sae(store.acts * factor, encode_relu, decode, lambda x, p: sae_loss(x, p, args.l1),
                                args.expansion * store.acts.shape[1], args.steps, args.batch_size, args.lr,
                                seed=args.seed, resample_every=args.resample_every)
    train_seconds = time.perf_counter() - started
    params = sae.fold_scaling(params, factor)
    metrics = evaluate(model, params, store.acts.mean(dim=0), args.eval_tokens)
    d_in, d_sae = params["W_enc"].shape
    cfg = {"architecture": "standard", "metadata": {
        "model_name": MODEL, "hook_name": HOOK, "hook_head_index": None, "prepend_bos": True, "context_size": 64,
        "dataset_path": "utils.world.generate_text (train split, random repeats left out)",
        "l1_coefficient": args.l1, "training_steps": args.steps, "train_batch_size": args.batch_size,
        "lr": args.lr, "seed": args.seed, "training_tokens": args.train_tokens, "folded_scaling_factor": factor}}
    folder = sae.save_sae(args.out / args.name, params, cfg)
    (folder / "training_log.json").write_text(json.dumps({**log, "metrics": metrics}, indent=1) + "\n")
    (folder / "MODEL_CARD.md").write_text(CARD.format(
        name=args.name, model=MODEL, hook=HOOK, d_in=d_in, d_sae=d_sae, expansion=args.expansion, factor=factor,
        steps=args.steps, lr=args.lr, batch_size=args.batch_size, l1=args.l1, resample_every=args.resample_every,
        resampled=log["resampled"], seed=args.seed, train_seconds=train_seconds, collect_seconds=collect_seconds,
        train_tokens=args.train_tokens, busy=f", {args.busy}" if args.busy else "", **metrics))
    print(json.dumps({"folder": str(folder), "train_seconds": round(train_seconds, 1), **metrics}, indent=1))


if __name__ == "__main__":
    main()
