"""One loader for every model the course uses: ``load_model(name)``.

Bundled models live in ``models/<name>/`` in Hugging Face format (``config.json``,
``model.safetensors``, tokenizer files) beside a ``MODEL_CARD.md``; hub models (gpt2-small,
pythia-70m, ...) go through the same TransformerLens call when the hub is reachable. Either way
you get a ``TransformerBridge`` with compatibility mode on, so hook names such as
``blocks.0.attn.hook_pattern`` and ``cache["pattern", 0]`` work as in the TransformerLens docs.
"""
from __future__ import annotations

import os
import socket
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
DEFAULT_MODEL = "world-neox"

# Short names the course uses for hub models, and their Hugging Face ids.
HUB_MODELS = {
    "gpt2-small": "gpt2",
    "gpt2": "gpt2",
    "pythia-70m": "EleutherAI/pythia-70m",
    "attn-only-2l": "NeelNanda/Attn_Only_2L",
}


class ModelUnavailable(RuntimeError):
    """A hub model was asked for, but it is neither cached nor downloadable from here."""


def bundled_models() -> list[str]:
    """Names of the models shipped in ``models/`` (each a folder with a ``config.json``)."""
    return sorted(p.parent.name for p in MODELS_DIR.glob("*/config.json"))


def checkpoints(name: str) -> list[int]:
    """Training steps at which the bundled model ``name`` kept a checkpoint, in order.

    ``world-attn-2l`` keeps ten, spanning the phase change in which its induction heads form;
    load one with ``load_model("world-attn-2l", checkpoint=step)``.
    """
    folder = MODELS_DIR / name / "checkpoints"
    return sorted(int(p.parent.name.removeprefix("step_")) for p in folder.glob("step_*/config.json"))


def load_model(name: str | None = None, *, checkpoint: int | None = None, device: str = "cpu"):
    """Return a TransformerLens ``TransformerBridge`` for ``name`` with compatibility mode on.

    ``name`` is a bundled model (default: ``world-neox``, trained on the course's small world),
    a path to a Hugging Face model folder, or a hub name such as ``gpt2-small``. Offline, a hub
    name that is not in the local cache fails within seconds with :class:`ModelUnavailable`.
    ``checkpoint`` picks a bundled model's weights at an earlier training step (see
    :func:`checkpoints`); without it you get the final weights.
    """
    name = name or DEFAULT_MODEL
    if checkpoint is not None:
        steps = checkpoints(name)
        if checkpoint not in steps:
            raise ValueError(f"{name!r} has no checkpoint at step {checkpoint}; it has {steps or 'none'}")
        name = str(MODELS_DIR / name / "checkpoints" / f"step_{checkpoint:05d}")
    source, local = _source(name)
    from transformer_lens.model_bridge import TransformerBridge

    model = TransformerBridge.boot_transformers(source, device=device)
    if local is not None:
        # The course's models are trained with <bos> first. TransformerLens prepends it by
        # default for GPT-2 but not for GPT-NeoX (Pythia was trained without one).
        model.cfg.default_prepend_bos = True
    model.enable_compatibility_mode()
    model.eval()
    return model


def load_hf_model(name: str | None = None):
    """The same model as :func:`load_model`, as a plain Hugging Face ``transformers`` model.

    Libraries that hook into ``transformers`` modules directly (pyvene, nnsight) take this form.
    Its forward pass does not prepend ``<bos>``: pass token ids that start with it, as
    ``load_model(name).to_tokens(text)`` returns them. Weights are float32 and in eval mode.
    """
    import torch
    from transformers import AutoModelForCausalLM

    source, _ = _source(name or DEFAULT_MODEL)
    return AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32).eval()


def _source(name: str) -> tuple[str, Path | None]:
    """Where ``name``'s weights load from (a local folder or a hub id), and the local folder if any."""
    local = _local_folder(name)
    if local is not None:
        return str(local), local
    hub_id = HUB_MODELS.get(name, name)
    _ensure_hub_reachable(name, hub_id)  # before any slow import, so offline fails fast
    return hub_id, None


def _local_folder(name: str) -> Path | None:
    for candidate in (MODELS_DIR / name, Path(name)):
        if (candidate / "config.json").is_file():
            return candidate
    if name not in HUB_MODELS and "/" not in name:
        known = ", ".join(bundled_models() + sorted(HUB_MODELS))
        raise ValueError(f"unknown model {name!r}; bundled and hub names: {known}")
    return None


def _ensure_hub_reachable(name: str, hub_id: str, timeout: float = 3.0) -> None:
    """Fail fast, with one clear message, when a hub model can be neither found nor fetched."""
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(hub_id, "config.json"), str):
        return  # cached: transformers loads it without the network
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false")
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    if not offline:
        try:
            socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=timeout).close()
            return
        except OSError:
            pass  # unreachable: no network, a firewall, or a proxy-only network
    raise ModelUnavailable(
        f"{name!r} ({hub_id}) is a hub model, it is not in your Hugging Face cache, and the hub "
        f"({endpoint.hostname}) cannot be reached from here. Connect to the internet and run "
        f"load_model({name!r}) once to cache it, or use a bundled model: {', '.join(bundled_models()) or 'none yet'}."
    ) from None


@lru_cache(maxsize=4)
def cached_model(name: str | None = None):
    """``load_model`` once per process: for checks and helpers that need a model repeatedly."""
    return load_model(name)


def random_model(folder: str | Path, *, n_layers: int = 12, d_model: int = 768, n_heads: int = 12,
                 n_ctx: int = 256, seed: int = 0, tokenizer_from: str | Path | None = None):
    """Build a GPT-2-architecture model with random weights (GPT-2-small shaped by default),
    save it in ``folder`` with a bundled model's tokenizer, and load it with :func:`load_model`.

    Checks and tests use it to prove that nothing is hard-wired to the default model's sizes.
    """
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    folder = Path(folder)
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_from or MODELS_DIR / DEFAULT_MODEL))
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=n_ctx, n_embd=d_model, n_layer=n_layers,
                        n_head=n_heads, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return load_model(str(folder))
