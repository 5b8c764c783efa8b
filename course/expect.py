"""Expected outputs of the solved notebooks, committed so that CI compares against something fixed.

A code cell whose first line is ``# NBVAL_CHECK_OUTPUT`` (the marker's name comes from nbval, whose
convention it keeps) has its printed output recorded in ``tests/expected_outputs/NN_name.json``,
keyed by the cell's id. ``tests/test_notebooks.py`` compares every executed solved notebook with
that file; the file changes only when a maintainer runs

    ./run expect [NN_name ...]     # or: python -m course expect

and commits the diff after reading it. Mark every cell whose printed numbers the prose quotes.

Outputs are compared as text after :data:`SANITIZE` (addresses, timings, progress bars, the
size of a passing check's float error), with numbers parsed out and compared with a relative
tolerance of :data:`RTOL`: another CPU's float32 summation order passes, a changed number fails.
"""
from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from pathlib import Path

import nbformat

from course.notebooks import ROOT, chapter_notebooks

MARKER = "# NBVAL_CHECK_OUTPUT"
EXPECTED_DIR = ROOT / "tests" / "expected_outputs"
RTOL, ATOL = 1e-3, 1e-6

SANITIZE = [  # (pattern, replacement), applied in order to both sides
    (re.compile(r"0x[0-9a-fA-F]+"), "0xADDRESS"),                                  # memory addresses
    (re.compile(r"\d+(\.\d+)?\s?(s|ms|µs|seconds|it/s|s/it)\b"), "TIME"),          # timings
    (re.compile(r"\d+%\|.*\|.*"), "PROGRESS"),                                     # progress bars
    (re.compile(r"max (abs|rel) err [^,\]]+"), r"max \1 err ERR"),                 # a passing check's float noise
]
NUMBER = re.compile(r"([-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)")
FAIL = re.compile(r"\bFAIL\b")
CHECK_CALL = re.compile(r"\bcheck\(")


def is_marked(cell) -> bool:
    return cell.cell_type == "code" and cell.source.lstrip().startswith(MARKER)


def output_text(cell) -> str:
    """What a cell printed (stdout) and the plain-text form of its value, as one string."""
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream" and out.name == "stdout":
            parts.append(out.text)
        elif out.output_type == "execute_result":
            parts.append(out.data.get("text/plain", "") + "\n")
    return "".join(parts)


def sanitize(text: str) -> str:
    for pattern, replacement in SANITIZE:
        text = pattern.sub(replacement, text)
    return text


def expected_path(chapter: str) -> Path:
    return EXPECTED_DIR / f"{chapter}.json"


def record(notebook: Path) -> dict[str, dict[str, str]]:
    """``{cell id: {"source": ..., "output": sanitized output}}`` for the marked cells of an executed notebook."""
    nb = nbformat.read(notebook, as_version=4)
    return {cell.id: {"source": cell.source, "output": sanitize(output_text(cell))}
            for cell in nb.cells if is_marked(cell)}


def load(chapter: str) -> dict[str, dict[str, str]]:
    """The committed expectations of a chapter ({} if none); the file holds lists of lines."""
    path = expected_path(chapter)
    stored = json.loads(path.read_text()) if path.exists() else {}
    return {key: {field: "".join(lines) for field, lines in entry.items()} for key, entry in stored.items()}


def save(chapter: str, expected: dict[str, dict[str, str]]) -> Path:
    """Write a chapter's expectations, one line of source or output per JSON string, for readable diffs."""
    path = expected_path(chapter)
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = {key: {field: text.splitlines(keepends=True) for field, text in entry.items()}
              for key, entry in expected.items()}
    path.write_text(json.dumps(stored, indent=1, ensure_ascii=False) + "\n")
    return path


def _is_int(token: str) -> bool:
    return not any(c in token for c in ".eE")


def difference(expected: str, actual: str, rtol: float = RTOL, atol: float = ATOL) -> str | None:
    """None when ``actual`` matches ``expected``, else a message saying where it does not.

    Text between numbers must be identical; integers must be equal; other numbers may differ by
    ``rtol`` relative (or ``atol`` absolute, for float noise around zero).
    """
    want, got = NUMBER.split(expected), NUMBER.split(actual)
    problem = None
    if len(want) != len(got) or want[0::2] != got[0::2]:
        problem = "the text differs"
    else:
        for w, g in zip(want[1::2], got[1::2]):
            if _is_int(w) and _is_int(g):
                if int(w) != int(g):
                    problem = f"{g} where {w} was expected"
                    break
            elif abs(float(w) - float(g)) > max(atol, rtol * max(abs(float(w)), abs(float(g)))):
                problem = f"{g} where {w} was expected (relative tolerance {rtol:g})"
                break
    if problem is None:
        return None
    diff = "\n".join(difflib.unified_diff(expected.splitlines(), actual.splitlines(),
                                          "expected", "actual", lineterm="", n=1))
    return f"{problem}:\n{diff}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="./run expect", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapters", nargs="*", help="e.g. 04_superposition (default: every chapter)")
    parser.add_argument("--reuse", action="store_true",
                        help="record from solved/ as it is, if current, instead of executing afresh")
    args = parser.parse_args(argv)
    from course.execute import ensure_executed, execute
    from course.notebooks import write_solved

    chapters = [nb for nb in chapter_notebooks() if not args.chapters or nb.stem in args.chapters]
    if args.chapters and len(chapters) != len(args.chapters):
        parser.error(f"unknown chapter among {args.chapters}; known: {[nb.stem for nb in chapter_notebooks()]}")
    for chapter in chapters:
        if args.reuse:
            notebook, = ensure_executed([chapter])
        else:
            notebook, = write_solved([chapter])
            print(f"{notebook.stem}: executed in {execute(notebook):.1f} s", flush=True)
        old, new = load(notebook.stem), record(notebook)
        changed = [k for k in new if k not in old or difference(old[k]["output"], new[k]["output"])]
        for k in new.keys() - changed:  # within tolerance: keep the committed text, so the diff shows real changes
            new[k]["output"] = old[k]["output"]
        path = save(notebook.stem, new)
        print(f"wrote {path.relative_to(ROOT)}: {len(new)} marked cells, {len(changed)} new or changed"
              + (f" ({', '.join(changed)}); review them in `git diff`" if changed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
