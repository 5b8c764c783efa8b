"""The executed solved notebooks print what was committed, and no check in them fails.

Expected outputs live in tests/expected_outputs/ and change only through `./run expect` (see
course/expect.py), so a reference that breaks, or a number the prose quotes that moves, fails
here. The notebooks are executed first if solved/ is missing or older than the code
(`./run test` has just executed them, so there it only reads them).

COURSE_EXECUTED_DIR puts the executed notebooks elsewhere (`./run test-tl3` uses a scratch
folder, so that a second TransformerLens version does not overwrite the book's notebooks).
"""
import os
from pathlib import Path

import nbformat
import pytest

from course import expect
from course.execute import ensure_executed
from course.notebooks import ROOT, SOLVED_DIR, chapter_notebooks

pytestmark = pytest.mark.slow
EXECUTED_DIR = ROOT / os.environ.get("COURSE_EXECUTED_DIR", SOLVED_DIR)
CHAPTERS = {nb.stem: nb for nb in chapter_notebooks()}
_executed: dict[str, nbformat.NotebookNode] = {}


def executed(chapter: str) -> nbformat.NotebookNode:
    """The chapter's solved notebook with outputs, executed now if it is missing or out of date."""
    if chapter not in _executed:
        path, = ensure_executed([CHAPTERS[chapter]], EXECUTED_DIR)
        _executed[chapter] = nbformat.read(path, as_version=4)
    return _executed[chapter]


def where(chapter: str, cell) -> str:
    first = next((line for line in cell.source.splitlines() if not line.startswith("#")), "")
    return f"{chapter}, cell {cell.id} ({first.strip()[:60]!r})"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_marked_cells_print_the_committed_output(chapter):
    expected = expect.load(chapter)
    assert expected, f"no {expect.expected_path(chapter).relative_to(ROOT)}: run `./run expect {chapter}` and review it"
    nb = executed(chapter)
    marked = {cell.id: cell for cell in nb.cells if expect.is_marked(cell)}
    problems = []
    for key, cell in marked.items():
        if key not in expected:
            problems.append(f"{where(chapter, cell)} is marked but has no expected output: "
                            f"run `./run expect {chapter}` and review the diff")
            continue
        actual = expect.sanitize(expect.output_text(cell))
        if message := expect.difference(expected[key]["output"], actual):
            problems.append(f"{where(chapter, cell)} printed something else than committed: {message}")
    stale = expected.keys() - marked.keys()
    if stale:
        problems.append(f"expected outputs for cells no longer marked or gone: {sorted(stale)}; "
                        f"run `./run expect {chapter}`")
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_no_check_fails_and_no_cell_raises(chapter):
    problems = []
    for cell in executed(chapter).cells:
        if cell.cell_type != "code":
            continue
        for out in cell.outputs:
            if out.output_type == "error":
                problems.append(f"{where(chapter, cell)} raised {out.ename}: {out.evalue}")
        text = expect.output_text(cell)
        if expect.CHECK_CALL.search(cell.source) and expect.FAIL.search(text):
            problems.append(f"{where(chapter, cell)}: a check fails with the reference solution:\n{text}")
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)
