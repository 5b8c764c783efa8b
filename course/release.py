"""Write the learner distribution: ``python -m course.release OUT_DIR``.

What a learner gets: the chapter notebooks (``chapters/``), ``utils/``, ``models/``, the
autograder with its public checks only (hidden checks are removed from each chapter's check
module, see :mod:`autograder.grading.strip`) and the recorded reference outputs that public
checks replay (``autograder/expected/``), pyproject and the environment/lock files, and a README
of its own (``course/learner_README.md``) whose commands install and run it from the folder
itself: the repository's ``./run`` is not shipped. Never ``solutions/``, ``tests/``, the solved
notebooks, the book build, or the grading tools (only the notebook reader that
:mod:`autograder.progress` uses, :mod:`autograder.grading.extract`, which runs nothing).
"""
from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = Path(__file__).resolve().parent / "learner_README.md"
TOP_FILES = ["pyproject.toml", "environment.yml", "requirements.in", "requirements.lock",
             "requirements-tl3.lock", "LICENSE"]
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", ".DS_Store")
NEVER = ("solutions", "tests", "solved", "_build", "book", ".git")


def _copy_autograder(target: Path) -> list[str]:
    from autograder.grading.strip import hidden_check_names, strip_hidden_checks

    shutil.copytree(ROOT / "autograder", target, ignore=shutil.ignore_patterns(
        "__pycache__", "*.pyc", "grading"))
    (target / "grading").mkdir()
    shutil.copyfile(ROOT / "autograder" / "grading" / "extract.py", target / "grading" / "extract.py")
    (target / "grading" / "__init__.py").write_text(
        '"""Only the notebook reader that `autograder.progress` uses; class grading is not shipped."""\n')
    removed = []
    for module in sorted(target.glob("ch*.py")):
        source = module.read_text()
        removed += [f"{module.stem}.{name}" for name in hidden_check_names(source)]
        module.write_text(strip_hidden_checks(source))
    return removed


def _pyproject(text: str) -> str:
    """Package list without the packages that are not shipped."""
    def keep(match: re.Match) -> str:
        items = [i for i in re.findall(r'"([^"]+)"', match.group(1)) if i.rstrip("*") not in ("solutions", "course")]
        return "include = [" + ", ".join(f'"{i}"' for i in items) + "]"

    return re.sub(r"include\s*=\s*\[([^\]]*)\]", keep, text, count=1)


def release(out: Path) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for folder in ("chapters", "utils", "models"):
        if (ROOT / folder).is_dir():
            shutil.copytree(ROOT / folder, out / folder, ignore=IGNORE, dirs_exist_ok=True)
    removed = _copy_autograder(out / "autograder")
    for name in TOP_FILES:
        if (ROOT / name).is_file():
            text = (ROOT / name).read_text()
            (out / name).write_text(_pyproject(text) if name == "pyproject.toml" else text)
    shutil.copyfile(README, out / "README.md")
    leaked = [n for n in NEVER if (out / n).exists()]
    if leaked:
        raise RuntimeError(f"the distribution must not contain {leaked}")
    chapters = sorted(p.stem for p in (out / "autograder").glob("ch*.py"))
    missing = [c for c in chapters if not (out / "autograder" / "expected" / f"{c}.json").exists()]
    return {"out": str(out), "hidden_checks_removed": removed, "chapters": chapters,
            "chapters_without_recorded_outputs": missing}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.release", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write the learner distribution into (new or empty)")
    parser.add_argument("--force", action="store_true", help="write into a folder that is not empty")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.out.exists() and any(args.out.iterdir()) and not args.force:
        print(f"{args.out} is not empty; pass --force to write into it", file=sys.stderr)
        return 2
    report = release(args.out)
    print(f"wrote {report['out']}: chapters {', '.join(report['chapters'])}; "
          f"{len(report['hidden_checks_removed'])} hidden check(s) removed")
    if report["chapters_without_recorded_outputs"]:
        print("warning: no recorded outputs for " + ", ".join(report["chapters_without_recorded_outputs"])
              + "; run `python -m autograder.record` first", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
