"""Your progress: which exercises of your notebooks pass their checks, chapter by chapter.

    from autograder import progress; progress()       # in a notebook (save it first)
    ./run progress [FOLDER_OR_NOTEBOOK ...]            # or: python -m autograder.progress work/

Without arguments it looks at ``work/`` (where ``./run work`` puts your copies), else at
``chapters/``. A notebook is never run whole: as in class grading, :func:`extract` keeps only the
statements that define the chapter's exercises and what they need (no training loops, figures
or ``check`` calls). That program runs in a child process with a time limit, and the public
checks run on what it defines, as ``check(...)`` does in the notebook. It reads the notebook
file, so unsaved changes are not seen. The child is no sandbox: it is for your own notebooks;
grade other people's with ``./run grade``.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import tempfile
import types
from pathlib import Path

from autograder.core import check, load_all_chapters
from autograder.grading.extract import NotebookUnreadable, extract

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 300.0  # one notebook's program and checks; a model load and a few checks take seconds


def default_folder() -> Path:
    """``work/`` if the learner made it, else the course's ``chapters/``, else the current folder."""
    return next((f for f in (ROOT / "work", ROOT / "chapters") if f.is_dir()), Path.cwd())


def find_notebooks(paths: list[Path]) -> list[Path]:
    """The chapter notebooks (``NN_name.ipynb``) among ``paths``, searching folders recursively."""
    found = []
    for path in paths:
        candidates = [path] if path.is_file() else sorted(path.rglob("[0-9][0-9]_*.ipynb"))
        found += [p for p in candidates if ".ipynb_checkpoints" not in p.parts]
    return found


def exercises_of(notebook: Path) -> list[str]:
    """The exercise names of the notebook's chapter (``04_superposition.ipynb`` -> ``ch04_...``)."""
    chapter = "ch" + notebook.stem
    return [e.name for e in load_all_chapters().values() if e.chapter == chapter]


def summarize(result) -> dict:
    """One exercise's verdict: pass, fail or todo (still the stub), and the first problem."""
    failed = [r for r in result.results if not r.passed]
    stub = any("NotImplementedError" in r.message for r in failed)
    return {"status": "todo" if stub else "fail" if failed else "pass",
            "passed": len(result.results) - len(failed), "checks": len(result.results),
            "problem": f"{failed[0].name}: {failed[0].message}" if failed and not stub else ""}


def check_notebook(notebook: Path) -> dict[str, dict]:
    """Run the notebook's exercise program and the public checks, here, in this process.

    Only :func:`notebook_progress`'s child calls this: the learner's code runs in it."""
    names = exercises_of(notebook)
    program = extract(notebook.read_bytes(), names)
    namespace = {"__name__": "__main__"}
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        for statement in program.statements:
            try:
                exec(compile(statement.source, f"<{notebook.name}, cell {statement.cell}>", "exec"), namespace)
            except Exception:  # noqa: BLE001 - as in grading: a failing statement is skipped
                pass
        report = {}
        for name in names:
            if not callable(namespace.get(name)):
                report[name] = {"status": "missing", "passed": 0, "checks": 0, "problem": "not defined"}
            else:
                report[name] = summarize(check(namespace[name], name, quiet=True))
    return report


def notebook_progress(notebook: Path, timeout: float = TIMEOUT_S) -> dict[str, dict]:
    """:func:`check_notebook` in a child process, so that nothing the learner's code does (a
    hang, a crash, changed global state) reaches the caller, say the learner's own kernel."""
    names = exercises_of(notebook)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        try:
            done = subprocess.run([sys.executable, "-m", "autograder.progress", "--child", str(notebook), str(out)],
                                  cwd=notebook.parent, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            problem = f"the notebook's definitions and checks took over {timeout:.0f} s"
            return {n: {"status": "fail", "passed": 0, "checks": 0, "problem": problem} for n in names}
        if out.exists():
            return json.loads(out.read_text())
    problem = (done.stderr.strip().splitlines() or ["the checks crashed"])[-1]
    return {n: {"status": "fail", "passed": 0, "checks": 0, "problem": problem} for n in names}


def format_report(notebook: Path, report: dict[str, dict]) -> str:
    """A chapter's lines: a header with the count of passing exercises, then one line each."""
    passing = sum(r["status"] == "pass" for r in report.values())
    lines = [f"{notebook.stem}: {passing}/{len(report)} exercises pass  ({notebook})"]
    for name, r in report.items():
        line = f"  {r['status'].upper():7} {name}"
        if r["checks"] and r["status"] != "todo":
            line += f"  ({r['passed']}/{r['checks']} checks)"
        if r["problem"]:
            line += f"  {r['problem'][:100]}"
        lines.append(line)
    return "\n".join(lines)


def progress(*paths, timeout: float = TIMEOUT_S, quiet: bool = False) -> dict[str, dict[str, dict]]:
    """Check every chapter notebook under ``paths`` (default: :func:`default_folder`), print
    a report per chapter, and return ``{notebook path: {exercise: verdict}}``."""
    notebooks = find_notebooks([Path(p) for p in paths] or [default_folder()])
    reports = {}
    for notebook in notebooks:
        if not exercises_of(notebook):
            continue
        reports[str(notebook)] = report = notebook_progress(notebook.resolve(), timeout)
        if not quiet:
            print(format_report(notebook, report), flush=True)
    if not reports and not quiet:
        print(f"no chapter notebooks (NN_name.ipynb) with exercises in {', '.join(map(str, paths)) or default_folder()}")
    return reports


class _CallableModule(types.ModuleType):
    """``from autograder import progress`` gives this module: calling it calls :func:`progress`."""

    def __call__(self, *paths, **options):
        return progress(*paths, **options)


sys.modules[__name__].__class__ = _CallableModule


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        notebook, out = Path(argv[1]), Path(argv[2])
        try:
            report = check_notebook(notebook)
        except NotebookUnreadable as error:
            report = {n: {"status": "fail", "passed": 0, "checks": 0, "problem": str(error)}
                      for n in exercises_of(notebook)}
        out.write_text(json.dumps(report))
        return 0
    parser = argparse.ArgumentParser(prog="./run progress", description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks or folders (default: work/, else chapters/)")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds per notebook")
    args = parser.parse_args(argv)
    reports = progress(*args.paths, timeout=args.timeout)
    return 0 if reports else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
