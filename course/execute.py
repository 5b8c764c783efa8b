"""Execute solved notebooks, the way the book and CI see them, and time each one."""
from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from course.notebooks import ROOT, SOLVED_DIR, chapter_notebooks, solve, write_solved

# No cell should take more than a fraction of a chapter's 2-minute budget; COURSE_CELL_TIMEOUT
# raises the limit on a machine that is busy with other work.
TIMEOUT_PER_CELL_S = int(os.environ.get("COURSE_CELL_TIMEOUT", 90))


def execute(notebook: Path, attempts: int = 2) -> float:
    """Run every cell of ``notebook`` in a fresh kernel, save it with outputs; return seconds.

    A kernel that stops answering (seen rarely on an overloaded machine) gets one more try in a
    fresh kernel; an error raised by a cell fails at once.
    """
    for attempt in range(1, attempts + 1):
        nb = nbformat.read(notebook, as_version=4)
        started = time.perf_counter()
        try:
            NotebookClient(nb, timeout=TIMEOUT_PER_CELL_S, kernel_name="python3",
                           resources={"metadata": {"path": str(notebook.parent)}}).execute()
        except (CellTimeoutError, DeadKernelError) as error:
            if attempt == attempts:
                raise
            print(f"{notebook.stem}: {type(error).__name__}, retrying in a fresh kernel", flush=True)
            continue
        seconds = time.perf_counter() - started
        nbformat.write(nb, notebook)
        return seconds


def peak_child_memory_mb() -> float:
    """Largest resident memory of any finished child process (the kernels), in MB."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


# What a solved notebook's outputs depend on, besides its own cells.
INPUTS = ["solutions", "utils", "autograder", "models"]


def stale_reason(chapter: Path, executed: Path) -> str | None:
    """Why ``executed`` (a solved notebook with outputs) does not show ``chapter`` as it is now.

    None when it exists, every code cell ran, its cells are the chapter's solved cells, and it is
    newer than the chapter and every file under solutions/, utils/, autograder/ and models/.
    """
    if not executed.exists():
        return "not written yet"
    nb = nbformat.read(executed, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    if any(c.execution_count is None for c in code):
        return "not executed"
    if [c.source for c in nb.cells] != [c.source for c in solve(chapter).cells]:
        return "its cells differ from chapters/ and solutions/"
    built = executed.stat().st_mtime
    inputs = [chapter, *(p for d in INPUTS for p in (ROOT / d).rglob("*") if p.is_file() and "__pycache__" not in p.parts)]
    newer = [p for p in inputs if p.stat().st_mtime > built]
    if newer:
        return f"older than {newer[0].relative_to(ROOT)}"
    return None


def ensure_executed(chapters: list[Path] | None = None, directory: Path = SOLVED_DIR) -> list[Path]:
    """The executed solved notebooks of ``chapters`` (default: all) in ``directory``.

    A notebook that is missing, unexecuted or out of date (see :func:`stale_reason`) is written
    and executed now, so that a test never reads outputs that the current code did not make.
    """
    executed = []
    for chapter in chapters or chapter_notebooks():
        target = directory / chapter.name
        reason = stale_reason(chapter, target)
        if reason:
            print(f"{target}: {reason}; executing it", flush=True)
            write_solved([chapter], directory)
            seconds = execute(target)
            print(f"{chapter.stem}: {seconds:.1f} s", flush=True)
        executed.append(target)
    return executed


def main(argv: list[str]) -> None:
    """``python -m course.execute [NOTEBOOK ...]``: execute solved notebooks in place."""
    notebooks = [Path(a) for a in argv] or sorted(SOLVED_DIR.glob("*.ipynb"))
    for notebook in notebooks:
        seconds = execute(notebook)
        print(f"{notebook.stem}: {seconds:.1f} s, peak memory {peak_child_memory_mb():.0f} MB", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
