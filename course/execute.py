"""Execute solved notebooks, the way the book and CI see them, and time each one."""
from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from course.notebooks import SOLVED_DIR

TIMEOUT_PER_CELL_S = 90  # no cell should take more than a fraction of a chapter's 2-minute budget


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


def main(argv: list[str]) -> None:
    """``python -m course.execute [NOTEBOOK ...]``: execute solved notebooks in place."""
    notebooks = [Path(a) for a in argv] or sorted(SOLVED_DIR.glob("*.ipynb"))
    for notebook in notebooks:
        seconds = execute(notebook)
        print(f"{notebook.stem}: {seconds:.1f} s, peak memory {peak_child_memory_mb():.0f} MB", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
