"""Benchmark: grade 30 generated submissions of one chapter and print the wall time.

    python scripts/bench_grading.py [--chapter 04_superposition] [-j 2] [--hogs N] [--keep DIR]

The mix (tests/grading_fixtures/make_submissions.py): correct ones, a partly correct one, the
stub, and hostile/broken ones (infinite loops, memory and fork bombs, exits, cheats, malformed
notebooks...), 30 in all. Budget: 5 minutes on 2 cores. ``--hogs N`` runs N processes that spin
on a CPU each while grading: limits count CPU time, so the gradebook (its digest is printed)
must be the same as on a quiet machine; only the wall time grows.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.grading_fixtures.load import cpu_hogs  # noqa: E402
from tests.grading_fixtures.make_submissions import make_submissions  # noqa: E402

HOSTILE_MIX = ["infinite_loop", "memory_bomb", "fork_bomb", "sys_exit", "os_exit", "fake_pass", "monkeypatch_torch",
               "monkeypatch_checker", "import_solutions", "always_equal", "nan_output", "huge_output",
               "write_outside", "malformed_json", "empty_notebook", "missing_exercise", "syntax_error",
               "messy_but_correct", "hang_then_correct", "exit_in_cell_then_correct"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chapter", default="04_superposition")
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument("-n", type=int, default=30)
    parser.add_argument("--hogs", type=int, default=0, help="processes spinning on a CPU each while grading")
    parser.add_argument("--keep", type=Path, help="keep submissions and output here")
    args = parser.parse_args(argv)
    base = args.keep or Path(tempfile.mkdtemp(prefix="bench-grading-"))
    subs, out = base / "submissions", base / "out"
    shutil.rmtree(subs, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    module = "ch" + args.chapter.removeprefix("ch")
    cases = ["stub", "partly_correct", *HOSTILE_MIX]
    expected = make_submissions(module, subs, outside=base / "outside.txt", cases=cases)
    make_submissions(module, base / "correct", outside=base / "outside.txt", cases=["correct"])
    for i in range(args.n - len(expected)):
        shutil.copy(base / "correct" / "correct.ipynb", subs / f"correct_{i:02d}.ipynb")
    n = len(list(subs.glob("*.ipynb")))
    load_before = os.getloadavg()
    started = time.monotonic()
    with cpu_hogs(args.hogs):
        done = subprocess.run([sys.executable, "-m", "autograder.grading", str(subs), "--chapter", args.chapter,
                               "--out", str(out), "-j", str(args.jobs), "--quiet"], cwd=ROOT)
    wall = time.monotonic() - started
    book = (out / "gradebook.csv").read_bytes()
    load_after = os.getloadavg()
    model = os.environ.get("COURSE_CHECK_MODEL") or "the default model"
    print(f"graded {n} submissions of {args.chapter} with -j {args.jobs} and {args.hogs} CPU hog(s) in {wall:.1f} s "
          f"wall (exit code {done.returncode}); check model: {model}; load average (1, 5, 15 min) before "
          f"{', '.join(f'{x:.2f}' for x in load_before)}, after {', '.join(f'{x:.2f}' for x in load_after)} "
          f"on {os.cpu_count()} CPUs; gradebook sha256 {hashlib.sha256(book).hexdigest()[:16]}: {out / 'gradebook.csv'}")
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
