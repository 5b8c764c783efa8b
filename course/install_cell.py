"""The first code cell of every learner notebook: install the course where it is missing.

The book's launch buttons open the notebooks of ``chapters/`` on Colab or Binder, where the
course is not installed. So each learner notebook starts with the snippet in
``course/first_cell.py``, which installs the course there and does nothing inside a copy of it.
The snippet runs before the course exists, so it imports nothing from it.

    ./run install-cell            # insert or update the cell in every learner notebook
    ./run install-cell --check    # exit 1 if a notebook lacks it or holds an old version

Each notebook is read, changed and written at once, never held: others edit notebooks too.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat

from course.notebooks import chapter_notebooks

SNIPPET = (Path(__file__).parent / "first_cell.py").read_text().rstrip() + "\n"
TAG = "install"


def first_code_cell(nb):
    """The notebook's first code cell, or None."""
    return next((cell for cell in nb.cells if cell.cell_type == "code"), None)


def has_install_cell(nb) -> bool:
    """True when the first code cell is the current snippet."""
    cell = first_code_cell(nb)
    return cell is not None and cell.source.rstrip() == SNIPPET.rstrip()


def ensure_install_cell(notebook: Path) -> str:
    """Make the notebook's first code cell the snippet: "inserted", "updated" or "current"."""
    nb = nbformat.read(notebook, as_version=4)
    if has_install_cell(nb):
        return "current"
    cell = first_code_cell(nb)
    if cell is not None and TAG in cell.metadata.get("tags", []):
        cell.source, status = SNIPPET, "updated"
    else:
        new = nbformat.v4.new_code_cell(SNIPPET, metadata={"tags": [TAG]})
        position = nb.cells.index(cell) if cell is not None else len(nb.cells)
        nb.cells.insert(position, new)
        status = "inserted"
    nbformat.write(nb, notebook)
    return status


def main(argv: list[str]) -> int:
    notebooks = chapter_notebooks()
    if "--check" in argv:
        missing = [nb.name for nb in notebooks if not has_install_cell(nbformat.read(nb, as_version=4))]
        for name in missing:
            print(f"{name}: its first code cell is not course/first_cell.py; run ./run install-cell")
        return 1 if missing else 0
    for notebook in notebooks:
        print(f"{notebook.name}: {ensure_install_cell(notebook)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
