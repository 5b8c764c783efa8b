"""``./run work``: copy the learner notebooks into ``work/``, the folder where a learner writes.

The notebooks in ``chapters/`` are tracked by git, so answers written there would collide with
the next ``git pull``. ``work/`` is git-ignored: copy the chapters there once, work there, and
pull course updates freely. A notebook already in ``work/`` is never overwritten; a chapter
added later is copied on the next run.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from course.notebooks import ROOT, chapter_notebooks

WORK_DIR = ROOT / "work"


def copy_learner_notebooks(target: Path = WORK_DIR) -> tuple[list[Path], list[Path]]:
    """Copy each chapter's learner notebook to ``target/NN_name.ipynb`` unless it is there
    already. Returns (copied, kept): the notebooks written now and those left as they were."""
    target.mkdir(parents=True, exist_ok=True)
    copied, kept = [], []
    for notebook in chapter_notebooks():
        destination = target / notebook.name
        if destination.exists():
            kept.append(destination)
        else:
            shutil.copyfile(notebook, destination)
            copied.append(destination)
    return copied, kept


def main(argv: list[str]) -> int:
    target = Path(argv[0]).resolve() if argv else WORK_DIR
    copied, kept = copy_learner_notebooks(target)
    for path in copied:
        print(f"copied {path.name}")
    for path in kept:
        print(f"kept   {path.name} (your work; not overwritten)")
    print(f"open them with:  .venv/bin/jupyter lab {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
