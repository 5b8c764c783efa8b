"""Print the course's speed and memory figures against the budgets in DESIGN.md.

``./run bench`` (or ``make bench``) measures, on this machine:
  * importing TransformerLens and loading the default model, in a fresh interpreter;
  * chapter 05: loading the shipped SAE, and collecting activations for and training its live SAE;
  * the median latency of ``check(...)`` over every exercise (its public checks, as a learner runs them);
  * each chapter's execution time and peak memory, each in a fresh kernel.
Figures are printed, never asserted: budgets belong in a report, not in flaky timed tests.
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time

from course.notebooks import ROOT, SOLVED_DIR, write_solved

LOAD_SCRIPT = """
import time
started = time.perf_counter()
import transformer_lens, utils.models
imported = time.perf_counter()
utils.models.load_model()
loaded = time.perf_counter()
utils.models.load_model()
again = time.perf_counter()
print(f"{imported - started:.2f} {loaded - imported:.2f} {again - loaded:.2f}")
"""


def model_load_seconds() -> tuple[float, float, float]:
    """Seconds to import, to load the default model the first time (which also imports the
    model classes lazily), and to load it again."""
    out = subprocess.run([sys.executable, "-c", LOAD_SCRIPT], capture_output=True, text=True, check=True, cwd=ROOT)
    return tuple(float(x) for x in out.stdout.split()[-3:])


SAE_SCRIPT = """
import time
import torch
from solutions.ch05_sparse_autoencoders import decode, encode_relu, normalisation_factor, sae_loss
from utils import ch05_sae
from utils.models import load_model
started = time.perf_counter()
ch05_sae.load_sae("world-neox-resid2-relu")
loaded = time.perf_counter()
store = ch05_sae.collect_activations(load_model(), "blocks.2.hook_resid_pre", 50_000)
collected = time.perf_counter()
acts = store.acts * normalisation_factor(store.acts)
ch05_sae.train_sae(acts, encode_relu, decode, lambda x, p: sae_loss(x, p, 2.0), 512, 500, 512, 2e-3,
                   resample_every=100, progress=False)
trained = time.perf_counter()
print(f"{loaded - started:.2f} {collected - loaded:.2f} {trained - collected:.2f}")
"""


def sae_seconds() -> tuple[float, float, float]:
    """Chapter 05: seconds to load the shipped SAE, to collect 50k tokens of layer-2 activations,
    and to train a live 4x SAE on them (500 steps at batch 512), with the chapter's references."""
    out = subprocess.run([sys.executable, "-c", SAE_SCRIPT], capture_output=True, text=True, check=True, cwd=ROOT)
    return tuple(float(x) for x in out.stdout.split()[-3:])


def check_latencies(repeats: int = 3) -> dict[str, float]:
    """Median seconds of ``check(reference)`` per exercise, after one warm-up call each."""
    from autograder.core import check, load_all_chapters, solutions_module

    latencies = {}
    for name, exercise in sorted(load_all_chapters().items()):
        reference = getattr(solutions_module(exercise.chapter), name)
        check(reference, quiet=True)  # warm-up: loads the model once, as a notebook session would
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            check(reference, quiet=True)
            times.append(time.perf_counter() - started)
        latencies[name] = statistics.median(times)
    return latencies


def chapter_figures() -> list[str]:
    write_solved()
    lines = []
    for notebook in sorted(SOLVED_DIR.glob("*.ipynb")):
        out = subprocess.run([sys.executable, "-m", "course.execute", str(notebook)], capture_output=True,
                             text=True, cwd=ROOT)
        lines.append(out.stdout.strip() or f"{notebook.stem}: FAILED\n{out.stderr[-2000:]}")
    return lines


def main(argv: list[str]) -> None:
    imported, loaded, again = model_load_seconds()
    print(f"import transformer_lens + utils: {imported:.2f} s")
    print(f"load default model, first time:  {loaded:.2f} s   (includes lazy imports of model classes)")
    print(f"load default model, again:       {again:.2f} s   (budget 1 s)")
    sae_load, sae_collect, sae_train = sae_seconds()
    print(f"chapter 05: load the shipped SAE {sae_load:.2f} s; collect 50k activations {sae_collect:.1f} s; "
          f"train a live 4x SAE (500 steps, batch 512) {sae_train:.1f} s")
    latencies = check_latencies()
    print(f"check() median over {len(latencies)} exercises: {statistics.median(latencies.values()):.3f} s"
          f"   (budget 1 s); slowest: {max(latencies, key=latencies.get)} {max(latencies.values()):.3f} s")
    if "--checks" in argv:
        for name, seconds in latencies.items():
            print(f"  {name}: {seconds:.3f} s")
    total = 0.0
    print("chapter execution (fresh kernel each; budget 120 s each):")
    for line in chapter_figures():
        print("  " + line)
        try:
            total += float(line.split(":")[1].split("s,")[0])
        except (IndexError, ValueError):
            pass
    print(f"all chapters: {total:.1f} s   (the book's budget: 600 s)")


if __name__ == "__main__":
    main(sys.argv[1:])
