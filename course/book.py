"""Build the book (jupyter-book 1.x) from the executed solved notebooks, warnings as errors.

This module is also a small Sphinx extension (``sphinx: extra_extensions`` in _config.yml) that
fits the solved notebooks to the book: it hides the tests' ``# NBVAL_...`` marker lines, drops
the widgets' saved state (explorers show their static twin in the book: see utils/plots.py), and
points the launch buttons at the learner notebooks in chapters/ (solved/ is git-ignored and
holds the solutions).
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from course.notebooks import ROOT

BUILD_DIR = ROOT / "_build"
# A first line such as `# NBVAL_CHECK_OUTPUT` tells tests/test_notebooks.py how to compare a
# cell's output; a reader has no use for it.
MARKER_LINE = re.compile(r"^# NBVAL_[A-Z_]+[ \t]*(?:\n|$)")


def copy_plotly_js() -> None:
    """Serve plotly.js from the book itself, so interactive figures work offline."""
    import plotly

    static = ROOT / "_static"
    static.mkdir(exist_ok=True)
    shutil.copyfile(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", static / "plotly.min.js")


def build_book(output: Path = ROOT) -> int:
    """``jupyter-book build`` into ``output/_build/html``; returns the exit status."""
    copy_plotly_js()
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    return subprocess.call([str(jupyter_book), "build", str(ROOT), "--path-output", str(output),
                            "--warningiserror", "--keep-going", "--all"], cwd=ROOT)


def static(output) -> bool:
    """Whether a page can show ``output``: a widget only with a static twin (an explorer's
    ``text/html``), not a bare widget such as a tqdm progress bar, whose text says 0%."""
    data = output.get("data", {})
    return "application/vnd.jupyter.widget-view+json" not in data or "text/html" in data


def for_the_book(source: str) -> str:
    """A notebook's JSON text without the ``# NBVAL_...`` first line of each code cell, without
    widgets that need a kernel, and without saved widget state: with it, myst-nb would load a
    widget manager from a CDN, which an offline reader cannot reach."""
    import nbformat

    nb = nbformat.reads(source, as_version=4)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = MARKER_LINE.sub("", cell.source, count=1)
            cell.outputs = [out for out in cell.outputs if static(out)]
    return nbformat.writes(nb)


def learner_notebook(pagename: str) -> str | None:
    """The learner notebook (path in the repository) of the book page ``solved/NN_name``."""
    name = Path(pagename).name
    notebook = ROOT / "chapters" / name / f"{name}.ipynb"
    return notebook.relative_to(ROOT).as_posix() if notebook.exists() else None


def _fit_notebook(app, docname: str, source: list[str]) -> None:
    if str(app.env.doc2path(docname)).endswith(".ipynb"):
        source[0] = for_the_book(source[0])


def _launch_learner_notebooks(app, pagename, templatename, context, doctree) -> None:
    """Rewrite the launch buttons sphinx-book-theme made for ``solved/NN_name.ipynb``."""
    learner = learner_notebook(pagename)
    if not learner:
        return
    solved = f"{pagename}.ipynb"
    for group in context.get("header_buttons", []):
        if group.get("label") == "launch-buttons":
            for button in group.get("buttons", []):
                if "url" in button:
                    button["url"] = button["url"].replace(solved, learner)


def setup(app):
    app.connect("source-read", _fit_notebook)
    # after sphinx-book-theme's own handler (priority 500), which adds the buttons
    app.connect("html-page-context", _launch_learner_notebooks, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
