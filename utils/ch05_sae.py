"""Chapter 05's helpers: SAEs on disk, toy data with known features, an activation store, a
training loop and splicing an SAE into the model.

No exercise answers live here. The training loop and the evaluation take the exercise
functions (encode, decode, loss) as arguments, so the learner's own code does the work.
An SAE is a dict of tensors with SAELens's names: ``W_enc`` [d_in, d_sae], ``W_dec``
[d_sae, d_in], ``b_enc`` [d_sae], ``b_dec`` [d_in].
"""
from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from utils.world import generate_text

SAES_DIR = Path(__file__).resolve().parent.parent / "models" / "saes"
SAE_FORMAT_VERSION = "6.54.12"
"""The SAELens release whose on-disk format ``save_sae`` writes (SAELens reads the version in
``metadata`` to decide how to parse the config)."""
PARAM_NAMES = ("W_enc", "W_dec", "b_enc", "b_dec")

Params = dict[str, torch.Tensor]


def _generator(purpose: str, seed: int) -> torch.Generator:
    """A random stream per purpose: the toy data and a fresh SAE drawn with the same seed must not
    share numbers (the SAE would start out holding the true directions)."""
    return torch.Generator().manual_seed(zlib.crc32(f"{purpose}:{seed}".encode()))


# --- SAEs on disk, in SAELens's format ---------------------------------------------------------

def save_sae(folder: str | Path, params: Params, cfg: dict) -> Path:
    """Write an SAE as SAELens does: ``cfg.json`` and ``sae_weights.safetensors``.

    cfg holds SAELens's field names: ``architecture`` ("standard", "topk", ...), ``k`` for topk,
    ``apply_b_dec_to_input``, ``normalize_activations`` and ``metadata`` (model_name,
    hook_name, ...). d_in, d_sae, dtype and device are filled in from the weights.
    ``sae_lens.SAE.load_from_disk(folder)`` then loads it.
    """
    missing = [name for name in PARAM_NAMES if name not in params]
    if missing:
        raise ValueError(f"params lacks {missing}: an SAE needs {list(PARAM_NAMES)}")
    d_in, d_sae = params["W_enc"].shape
    full = {"architecture": "standard", "apply_b_dec_to_input": True, "normalize_activations": "none",
            "reshape_activations": "none", **cfg, "d_in": int(d_in), "d_sae": int(d_sae),
            "dtype": "float32", "device": "cpu"}
    full["metadata"] = {"sae_lens_version": SAE_FORMAT_VERSION,
                        "sae_lens_training_version": SAE_FORMAT_VERSION, **cfg.get("metadata", {})}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cfg.json").write_text(json.dumps(full, indent=2) + "\n")
    save_file({k: v.detach().float().contiguous() for k, v in params.items()}, folder / "sae_weights.safetensors")
    return folder


def load_sae(name_or_folder: str | Path) -> tuple[Params, dict]:
    """Read an SAE written by :func:`save_sae` (or by SAELens): (params, cfg).

    A bare name is looked up in ``models/saes/``; anything else is a folder path.
    """
    folder = SAES_DIR / str(name_or_folder)
    if not (folder / "cfg.json").exists():
        folder = Path(name_or_folder)
    if not (folder / "cfg.json").exists():
        shipped = sorted(p.parent.name for p in SAES_DIR.glob("*/cfg.json"))
        raise FileNotFoundError(f"no SAE at {name_or_folder!r} (shipped SAEs: {', '.join(shipped) or 'none'})")
    cfg = json.loads((folder / "cfg.json").read_text())
    return load_file(folder / "sae_weights.safetensors"), cfg


# --- toy data with known features --------------------------------------------------------------

def toy_dataset(n_features: int, d: int, n: int, seed: int = 0, mean_active: float = 3.0,
                zipf_exponent: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Sparse data built from known directions: (data [n, d], true_directions [n_features, d]).

    The true directions are random unit vectors. Feature i fires with a probability that falls
    like 1 / (i + 1) ** zipf_exponent (a few common features, a long tail of rare ones), scaled
    so that on average ``mean_active`` features fire per sample, each with a magnitude uniform in
    [0, 1]. With n_features > d the directions cannot all be orthogonal: superposition.
    """
    g = _generator("toy", seed)
    true = torch.nn.functional.normalize(torch.randn(n_features, d, generator=g), dim=-1)
    weights = 1 / torch.arange(1, n_features + 1, dtype=torch.float32) ** zipf_exponent
    probs = (weights * mean_active / weights.sum()).clamp(max=1.0)
    fires = torch.rand(n, n_features, generator=g) < probs
    coefficients = fires * torch.rand(n, n_features, generator=g)
    return coefficients @ true, true


# --- activations from the model ----------------------------------------------------------------

@dataclass
class Activations:
    """What an SAE trains on, with where each row came from (dashboards need the contexts).

    acts: [n, d_in], one row per token; tokens: [n_seq, seq_len], the token ids run;
    index: [n, 2] long, the (sequence, position) of each row in ``tokens``.
    """
    acts: torch.Tensor
    tokens: torch.Tensor
    index: torch.Tensor

    def by_position(self, values: torch.Tensor) -> torch.Tensor:
        """Scatter per-row values [n, ...] back to [n_seq, seq_len, ...]; skipped tokens get 0."""
        out = values.new_zeros(*self.tokens.shape, *values.shape[1:])
        out[self.index[:, 0], self.index[:, 1]] = values
        return out


def world_documents(n_documents: int, seed: int, split: str = "train") -> list[str]:
    """World text for SAEs: ``generate_text`` without the bare random-word repeat documents.

    Those documents are noise to an SAE: trained on them, it spends features on "the next word is
    a random word" instead of on the world's language.
    """
    return generate_text(n_documents, seed=seed, split=split, random_repeat_prob=0.0)


@torch.no_grad()
def collect_activations(model, hook_name: str, n_tokens: int, seed: int = 0, batch_size: int = 64,
                        split: str = "train") -> Activations:
    """Run the model over world documents and keep ``hook_name``'s activation at every token.

    Each document is one sequence (BOS first, cut at the model's context). BOS is skipped (its
    activation is huge and the same everywhere) and so is padding. Stops after ``n_tokens`` rows.
    """
    pad = model.tokenizer.pad_token_id
    acts, tokens, index, have = [], [], [], 0
    bar = tqdm(total=n_tokens, desc=f"collecting {hook_name}")
    batch_seed = seed
    while have < n_tokens:
        batch = model.to_tokens(world_documents(batch_size, seed=batch_seed, split=split), truncate=True)
        batch_seed += 1_000_003
        _, cache = model.run_with_cache(batch, names_filter=hook_name)
        keep = batch != pad
        keep[:, 0] = False
        seq, pos = keep.nonzero(as_tuple=True)
        acts.append(cache[hook_name][seq, pos].float())
        index.append(torch.stack([seq + sum(len(t) for t in tokens), pos], dim=1))
        tokens.append(batch)
        bar.update(min(len(seq), n_tokens - have))
        have += len(seq)
    bar.close()
    width = max(t.shape[1] for t in tokens)
    tokens = torch.cat([torch.nn.functional.pad(t, (0, width - t.shape[1]), value=pad) for t in tokens])
    return Activations(torch.cat(acts)[:n_tokens], tokens, torch.cat(index)[:n_tokens])


# --- training ----------------------------------------------------------------------------------

def init_params(d_in: int, d_sae: int, seed: int, b_dec: torch.Tensor | None = None) -> Params:
    """A fresh SAE: unit-norm random decoder rows, the encoder their transpose, zero encoder bias.

    SAELens starts the same way (decoder rows random, W_enc = W_dec.T). b_dec starts at
    ``b_dec`` when given (the data's mean is a good centre), else at zero.
    """
    g = _generator("init", seed)
    W_dec = torch.nn.functional.normalize(torch.randn(d_sae, d_in, generator=g), dim=-1)
    return {"W_enc": W_dec.T.clone(), "W_dec": W_dec, "b_enc": torch.zeros(d_sae),
            "b_dec": torch.zeros(d_in) if b_dec is None else b_dec.detach().clone().float()}


def _total(loss_value) -> torch.Tensor:
    """A loss function may return one tensor or a tuple of terms (as sae_loss does): their sum."""
    return sum(loss_value) if isinstance(loss_value, (tuple, list)) else loss_value


@torch.no_grad()
def resample_dead(params: Params, dead: torch.Tensor, acts: torch.Tensor, encode, decode,
                  optimizer: torch.optim.Optimizer, g: torch.Generator) -> int:
    """Give dead features a second life (Towards Monosemanticity's resampling).

    Each dead feature's decoder row becomes an input the SAE reconstructs badly (drawn with
    probability proportional to the squared reconstruction error, centred on b_dec, unit
    norm); its encoder column points the same way, scaled to a fifth of the live columns'
    average norm, and its encoder bias is zeroed. Adam's memory of those entries is cleared.
    Returns the number of features resampled.
    """
    n_dead = int(dead.sum())
    if n_dead == 0:
        return 0
    sample = acts[torch.randint(len(acts), (min(len(acts), 8192),), generator=g)]
    error = (decode(encode(sample, params), params) - sample).pow(2).sum(dim=-1)
    chosen = sample[torch.multinomial(error.pow(2) + 1e-12, n_dead, replacement=True, generator=g)]
    directions = torch.nn.functional.normalize(chosen - params["b_dec"], dim=-1)
    live_norm = params["W_enc"][:, ~dead].norm(dim=0).mean() if (~dead).any() else torch.tensor(1.0)
    params["W_dec"][dead] = directions
    params["W_enc"][:, dead] = directions.T * 0.2 * live_norm
    params["b_enc"][dead] = 0.0
    for name in ("W_enc", "W_dec", "b_enc"):
        state = optimizer.state.get(params[name], {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state:
                moment = state[key]
                if name == "W_enc":
                    moment[:, dead] = 0.0
                else:
                    moment[dead] = 0.0
    return n_dead


def train_sae(acts: torch.Tensor, encode: Callable, decode: Callable, loss: Callable, d_sae: int,
              steps: int, batch_size: int, lr: float, seed: int = 0, resample_every: int | None = None,
              log_every: int = 50, progress: bool = True) -> tuple[Params, dict]:
    """Train an SAE on ``acts`` [n, d_in] with the functions you give it.

    encode(x, params) -> features and decode(features, params) -> reconstruction are used to
    watch sparsity and to resample; loss(x, params) returns the training loss (a tensor, or a
    tuple of terms that are summed, like sae_loss). Each step draws a random batch, takes an
    Adam step and rescales every decoder row to unit norm. With ``resample_every``, features
    that fired on no token in the last ``resample_every`` steps are resampled (see
    :func:`resample_dead`) at those step counts during the first half of training, so the
    second half can settle. Deterministic for a seed (on one thread).
    Returns (params, log): log holds lists ``step``, ``loss``, ``l0`` (mean active features per
    token in the batch) and ``dead_fraction`` (features silent for the last ``log_every`` steps
    or more), plus ``resampled``, the total number of features resampled.
    """
    if acts.ndim != 2:
        raise ValueError(f"acts must be [n_tokens, d_in], got shape {tuple(acts.shape)}")
    g = _generator("batches", seed)
    params = {k: v.requires_grad_() for k, v in init_params(acts.shape[1], d_sae, seed, acts.mean(dim=0)).items()}
    optimizer = torch.optim.Adam(params.values(), lr=lr)
    last_fired = torch.zeros(d_sae, dtype=torch.long)
    log = {"step": [], "loss": [], "l0": [], "dead_fraction": [], "resampled": 0}
    for step in tqdm(range(1, steps + 1), desc="training SAE", disable=not progress):
        x = acts[torch.randint(len(acts), (batch_size,), generator=g)]
        with torch.enable_grad():
            total = _total(loss(x, params))
            optimizer.zero_grad()
            total.backward()
        optimizer.step()
        with torch.no_grad():
            params["W_dec"].copy_(params["W_dec"] / params["W_dec"].norm(dim=-1, keepdim=True))
            fired = encode(x, params) != 0
        last_fired[fired.any(dim=0)] = step
        if resample_every and step % resample_every == 0 and step <= steps // 2:
            log["resampled"] += resample_dead(params, step - last_fired >= resample_every, acts, encode, decode,
                                              optimizer, g)
            last_fired[:] = step
        if step % log_every == 0 or step == steps:
            log["step"].append(step)
            log["loss"].append(total.item())
            log["l0"].append(float(fired.sum(dim=-1).float().mean()))
            log["dead_fraction"].append(float((step - last_fired >= log_every).float().mean()))
    return {k: v.detach() for k, v in params.items()}, log


def fold_scaling(params: Params, factor: float) -> Params:
    """An SAE trained on ``acts * factor``, rewritten to read and write unscaled activations.

    SAELens folds its ``expected_average_only_in`` factor into the weights the same way:
    W_enc * factor, and W_dec, b_dec divided by it (the feature activations do not change).
    """
    return {"W_enc": params["W_enc"] * factor, "W_dec": params["W_dec"] / factor,
            "b_enc": params["b_enc"].clone(), "b_dec": params["b_dec"] / factor}


# --- splicing an SAE into the model -----------------------------------------------------------

def next_token_losses(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each next token: [batch, seq - 1] (position i predicts token i + 1)."""
    log_probs = logits[:, :-1].log_softmax(dim=-1)
    return -log_probs.gather(-1, tokens[:, 1:, None])[..., 0]


def ignored_positions(model, tokens: torch.Tensor) -> torch.Tensor:
    """[batch, seq]: True at BOS and padding, the tokens SAELens's evals leave out (``ignore_tokens``)."""
    return (tokens == model.tokenizer.pad_token_id) | (tokens == model.tokenizer.bos_token_id)


@torch.no_grad()
def run_with_replacement(model, tokens: torch.Tensor, hook_name: str,
                         replace: Callable[[torch.Tensor], torch.Tensor] | None, everywhere: bool = False) -> torch.Tensor:
    """The model's logits with ``hook_name``'s activation replaced by ``replace(activation)``.

    BOS and padding keep their own activation, as in SAELens's SAE splicing, unless
    ``everywhere`` (SAELens's zero ablation replaces every position). ``replace=None`` runs the
    model unchanged.
    """
    if replace is None:
        return model(tokens)
    keep = torch.zeros_like(tokens, dtype=torch.bool) if everywhere else ignored_positions(model, tokens)

    def hook(activation, hook):
        return torch.where(keep[..., None], activation, replace(activation))

    return model.run_with_hooks(tokens, fwd_hooks=[(hook_name, hook)])


@torch.no_grad()
def splice_metrics(model, tokens: torch.Tensor, hook_name: str, replacements: dict, kl_divergence: Callable,
                   batch_size: int = 64) -> dict[str, dict[str, float]]:
    """Mean next-token loss, and mean KL(clean || replaced), for each replacement, as SAELens's evals.

    replacements: name -> (replace, everywhere) for :func:`run_with_replacement`. The loss is
    averaged over predictions whose input token is not ignored (BOS, padding) and whose target is
    not padding; the KL over every position whose token is not ignored. kl_divergence(clean,
    other) is the chapter's exercise. Returns name -> {"loss": ..., "kl": ...}.
    """
    sums = {name: {"loss": 0.0, "kl": 0.0} for name in replacements}
    n_loss = n_kl = 0
    for start in tqdm(range(0, len(tokens), batch_size), desc="splicing", leave=False):
        batch = tokens[start:start + batch_size]
        kept = ~ignored_positions(model, batch)
        scored = kept[:, :-1] & (batch[:, 1:] != model.tokenizer.pad_token_id)
        clean = model(batch)
        for name, (replace, everywhere) in replacements.items():
            logits = run_with_replacement(model, batch, hook_name, replace, everywhere)
            sums[name]["loss"] += float(next_token_losses(logits, batch)[scored].sum())
            sums[name]["kl"] += kl_divergence(clean[kept], logits[kept]) * int(kept.sum())
        n_loss, n_kl = n_loss + int(scored.sum()), n_kl + int(kept.sum())
    return {name: {"loss": s["loss"] / n_loss, "kl": s["kl"] / n_kl} for name, s in sums.items()}


def sae_replacement(params: Params, encode: Callable, decode: Callable) -> Callable:
    """The activation replaced by the SAE's reconstruction: decode(encode(x))."""
    return lambda x: decode(encode(x, params), params)
