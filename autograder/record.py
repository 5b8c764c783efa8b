"""Record the reference outputs that public checks compare against, for the learner distribution.

``python -m autograder.record`` runs every public check against the live reference in
``solutions/`` and writes, per chapter, ``autograder/expected/<chapter>.safetensors`` (the
outputs) and ``<chapter>.json`` (the reference signatures and the outputs' structure). Checks
are seeded, so the same inputs come back when a learner's ``check`` replays them; a test in
``tests/`` proves the recorded files are current.
"""
from __future__ import annotations

import json
import sys

import torch
from safetensors.torch import load_file, save_file

from autograder.core import (EXPECTED_DIR, REGISTRY, Reference, checking_chapter, load_all_chapters, signature_of,
                             solutions_module)


def _flatten(key: str, value, tensors: dict, structure: dict) -> None:
    """Store ``value`` (tensor, number, bool, or a tuple/list of them) as tensors plus a spec."""
    if isinstance(value, torch.Tensor):
        tensors[key] = value.detach().contiguous().cpu()
        structure[key] = "tensor"
    elif isinstance(value, bool):
        structure[key] = ["bool", value]
    elif isinstance(value, (int, float)):
        structure[key] = ["number", value]
    elif isinstance(value, str):
        structure[key] = ["str", value]
    elif isinstance(value, (tuple, list)):
        structure[key] = ["sequence", len(value)]
        for i, item in enumerate(value):
            _flatten(f"{key}#{i}", item, tensors, structure)
    else:
        raise TypeError(f"cannot record {key}: a {type(value).__name__}; return tensors or numbers")


def _unflatten(key: str, tensors: dict, structure: dict):
    spec = structure[key]
    if spec == "tensor":
        return tensors[key]
    kind, payload = spec
    if kind == "sequence":
        return tuple(_unflatten(f"{key}#{i}", tensors, structure) for i in range(payload))
    return payload


def record(chapter: str) -> dict:
    """Run the chapter's public checks on the reference, keeping every reference output."""
    load_all_chapters()
    module = solutions_module(chapter)
    store: dict = {}
    signatures = {}
    for exercise in REGISTRY.values():
        if exercise.chapter != chapter:
            continue
        reference = getattr(module, exercise.name)
        signatures[exercise.name] = signature_of(reference)
        with checking_chapter(chapter):
            for c in exercise.checks:
                if not c.hidden:
                    c.function(reference, Reference(exercise.name, c.name, "record", store))
    return {"signatures": signatures, "store": store}


def save(chapter: str, recorded: dict) -> None:
    tensors, structure = {}, {}
    for key, value in recorded["store"].items():
        _flatten(key, value, tensors, structure)
    EXPECTED_DIR.mkdir(exist_ok=True)
    save_file(tensors, EXPECTED_DIR / f"{chapter}.safetensors")
    meta = {"signatures": recorded["signatures"], "structure": structure}
    (EXPECTED_DIR / f"{chapter}.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")


def load(chapter: str) -> dict:
    """The recorded outputs of a chapter, keyed as :class:`Reference` numbers its calls."""
    meta = json.loads((EXPECTED_DIR / f"{chapter}.json").read_text())
    path = EXPECTED_DIR / f"{chapter}.safetensors"
    tensors = load_file(path) if path.exists() else {}
    top = {k for k in meta["structure"] if "#" not in k.rsplit("/", 1)[-1]}
    return {k: _unflatten(k, tensors, meta["structure"]) for k in top}


def chapters() -> list[str]:
    load_all_chapters()
    return sorted({e.chapter for e in REGISTRY.values()})


def main(argv: list[str]) -> None:
    for chapter in argv or chapters():
        save(chapter, record(chapter))
        print(f"recorded {chapter}")


if __name__ == "__main__":
    main(sys.argv[1:])
