"""Build the book (jupyter-book 1.x) from the executed solved notebooks, warnings as errors."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from course.notebooks import ROOT

BUILD_DIR = ROOT / "_build"


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
