"""The course's commands: ``./run COMMAND`` (or ``python -m course COMMAND``).

    build     write the solved notebooks, execute every chapter, build the book in _build/html
    test      build the solved notebooks, execute them, and run the whole test suite on them
    solve     only write solved/NN_name.ipynb from chapters/ and solutions/
    bench     print the speed budgets: model load, check() latency, chapter time and memory
    grade     grade a folder of submitted notebooks (see `grade --help`)
    work      copy the learner notebooks into work/ (git-ignored), never overwriting your answers
    release   write the learner distribution (no solutions, no hidden checks)
    record    re-record the reference outputs that public checks replay
    progress  which exercises of your notebooks pass, per chapter (default: work/, else chapters/)
    install-cell  put course/first_cell.py first in every learner notebook (--check: only verify)
    expect    re-record the notebooks' expected outputs (tests/expected_outputs/), to review and commit
"""
from __future__ import annotations

import subprocess
import sys

from course.notebooks import ROOT, write_solved


def build(args: list[str]) -> int:
    """Solve, execute and publish: the course's main job."""
    from course.book import build_book
    from course.execute import main as execute

    write_solved()
    execute([])
    return build_book()


def test(args: list[str]) -> int:
    """The whole suite: execute the solved notebooks once, then tests/ (which reads their outputs)."""
    from course.execute import main as execute

    write_solved()
    execute([])
    # sae-lens lives only in the TL 3.9 environment (./run test-tl3 runs those tests).
    select = [] if "-m" in args else ["-m", "not saelens"]
    return subprocess.call([sys.executable, "-m", "pytest", "tests", *select, *args], cwd=ROOT)


def solve(args: list[str]) -> int:
    for path in write_solved():
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


def forward(module: str):
    def run(args: list[str]) -> int:
        return subprocess.call([sys.executable, "-m", module, *args], cwd=ROOT)
    return run


COMMANDS = {
    "build": build,
    "test": test,
    "solve": solve,
    "bench": forward("course.bench"),
    "grade": forward("autograder.grading"),
    "work": forward("course.work"),
    "release": forward("course.release"),
    "record": forward("autograder.record"),
    "expect": forward("course.expect"),
    "progress": forward("autograder.progress"),
    "install-cell": forward("course.install_cell"),
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(__doc__)
        return 0 if not argv or argv[0] in ("-h", "--help", "help") else 2
    return COMMANDS[argv[0]](argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
