"""Grade a folder of submissions for one chapter: records, feedback pages and a gradebook.

For each submission: read and hash it, extract its program (:mod:`.extract`), start a sandbox
(:mod:`.sandbox`), and run every check of every exercise of the chapter, hidden ones included,
in this trusted process, with ``impl`` a proxy to the learner's code in the sandbox. The result
is a JSON record (scores, messages, durations, hashes, versions), a feedback page (Markdown and
HTML, hidden checks by name and pass/fail only), and a row of ``gradebook.csv``; each is written
atomically as soon as its submission is done, so an interrupted run loses nothing and a rerun
resumes (a record is reused while the submission's hash and the grader's hash are unchanged).
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import platform
import shutil
import tempfile
import threading
import time
import traceback
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from autograder.core import REGISTRY, CheckResult, Result, checking_chapter
from autograder.grading import feedback
from autograder.grading.budget import wall_backstop
from autograder.grading.extract import PARSE_LOCK, NotebookUnreadable, extract
from autograder.grading.references import run_exercise
from autograder.grading.sandbox import (ROOT, ExerciseSession, Limits, RemoteFunction, Sandbox, SandboxDied,
                                        prestart_zygote)
from autograder.grading.strip import strip_hidden_checks
from autograder.grading.submissions import read_submission

RECORD_VERSION = 1
PREIMPORT_ALLOWED = {"torch", "numpy", "einops", "plotly", "transformer_lens", "transformers", "utils", "autograder",
                     "tqdm", "jaxtyping", "matplotlib", "pandas", "sklearn", "scipy", "safetensors", "typing", "math",
                     "functools", "itertools", "collections", "dataclasses", "IPython", "ipywidgets", "circuitsvis",
                     "random", "re", "json"}
HIDDEN_MESSAGE = "hidden check: it tests the same specification on inputs you have not seen"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    return sha256_bytes(Path(path).read_bytes())


# --------------------------------------------------------------------------------- the chapter


@dataclass
class Chapter:
    """What grading one chapter needs, computed once per run in the trusted process."""

    module: str  # ch04_superposition
    exercises: list[str]  # in notebook order
    max_points: dict[str, float]
    checks_hashes: dict[str, str]
    grader_hash: str
    preload_model: bool

    @property
    def total(self) -> float:
        return sum(self.max_points.values())


def chapter_module_name(chapter: str) -> str:
    """``04_superposition``, ``ch04_superposition`` or a notebook path -> ``ch04_superposition``."""
    name = Path(chapter).stem
    return name if name.startswith("ch") else f"ch{name}"


def load_chapter(chapter: str) -> Chapter:
    module = chapter_module_name(chapter)
    import importlib

    try:
        importlib.import_module(f"autograder.{module}")  # this chapter only: another's bug cannot stop grading
    except ModuleNotFoundError:
        pass
    exercises = [e for e in REGISTRY.values() if e.chapter == module]
    if not exercises:
        known = sorted({e.chapter.removeprefix("ch") for e in REGISTRY.values()})
        raise SystemExit(f"no checks for chapter {chapter!r}; known chapters: {', '.join(known)}")
    order = _notebook_order(module)
    exercises.sort(key=lambda e: (order.index(e.name) if e.name in order else len(order), e.name))
    files = [ROOT / "autograder" / f"{module}.py", ROOT / "autograder" / "core.py",
             ROOT / "solutions" / f"{module}.py", *sorted((ROOT / "autograder" / "grading").glob("*.py"))]
    hashes = {str(p.relative_to(ROOT)): sha256_file(p) for p in files if p.exists()}
    checks_source = (ROOT / "autograder" / f"{module}.py").read_text()
    return Chapter(module, [e.name for e in exercises], {e.name: e.points for e in exercises}, hashes,
                   sha256_bytes(json.dumps(hashes, sort_keys=True).encode()), "check_model(" in checks_source)


def _notebook_order(module: str) -> list[str]:
    """Exercise names in the order their cells (tagged ``exercise``) appear in the learner notebook."""
    import ast

    stem = module.removeprefix("ch")
    names = []
    try:
        nb = json.loads((ROOT / "chapters" / stem / f"{stem}.ipynb").read_text())
        for cell in nb["cells"]:
            if cell.get("cell_type") == "code" and "exercise" in cell.get("metadata", {}).get("tags", []):
                source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
                names += [n.name for n in ast.parse(source).body
                          if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    except (OSError, ValueError, KeyError, SyntaxError):
        pass  # the registry order will do
    return names


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for package in ("torch", "transformer-lens", "safetensors", "transformers"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = None
    return out


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _plain(value):
    """JSON-safe copy (non-finite floats as strings)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


def _failed(exercise, message: str) -> Result:
    return Result(exercise.name, [CheckResult(c.name, False, message, 0.0, c.points, 0.0) for c in exercise.checks])


# ---------------------------------------------------------------------------------- grading one


@dataclass
class Paths:
    out: Path

    @property
    def records(self) -> Path:
        return self.out / "records"

    @property
    def feedback(self) -> Path:
        return self.out / "feedback"

    def record(self, student: str) -> Path:
        return self.records / f"{student}.json"


def grade_one(student: str, path: Path, chapter: Chapter, limits: Limits, paths: Paths, *,
              submissions_dir: Path, namespaces: bool | None = None) -> dict:
    """Grade one submission and write its record and feedback; never raises."""
    import importlib

    importlib.import_module(f"autograder.{chapter.module}")  # registers its checks (in a worker process too)
    started = time.monotonic()
    try:
        data, unreadable = read_submission(path), None
    except NotebookUnreadable as error:  # a FIFO, a folder, a huge file: zero, and the batch goes on
        data, unreadable = b"", error
    record = {
        "record_version": RECORD_VERSION, "student": student, "chapter": chapter.module,
        "submission": str(path), "submission_sha256": sha256_bytes(data),
        "graded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "grader": {"sha256": chapter.grader_hash, "files": chapter.checks_hashes, "versions": versions(),
                   "limits": asdict(limits), "platform": platform.platform()},
        "max_score": chapter.total, "load": {}, "exercises": {},
    }
    try:
        with checking_chapter(chapter.module):  # the chapter's check model, in this process and the sandbox
            if unreadable is not None:
                results, load = _not_graded({n: REGISTRY[n] for n in chapter.exercises}, unreadable, _new_load())
            else:
                results, load = _run_submission(data, chapter, limits, paths, submissions_dir, namespaces, started)
    except Exception:  # noqa: BLE001 - a grader bug must not stop the batch; it is recorded
        results = {name: _failed(REGISTRY[name], "the grader failed on this submission; ask your instructor")
                   for name in chapter.exercises}
        load = {"problems": ["internal grader error"], "grader_error": traceback.format_exc()[-4000:]}
    record["load"] = load
    for name in chapter.exercises:
        result = results[name]
        checks = {c.name: c for c in REGISTRY[name].checks}
        record["exercises"][name] = {
            "score": result.score, "max_score": chapter.max_points[name],
            "checks": [{"name": r.name, "hidden": checks[r.name].hidden, "passed": r.passed, "points": r.points,
                        "max_points": r.max_points, "message": r.message, "details": _plain(r.details),
                        "seconds": round(r.seconds, 4)} for r in result.results],
        }
    record["score"] = sum(e["score"] for e in record["exercises"].values())
    record["seconds"] = round(time.monotonic() - started, 3)
    _atomic_write(paths.feedback / f"{student}.md", feedback.markdown(record))
    _atomic_write(paths.feedback / f"{student}.html", feedback.html(record))
    _atomic_write(paths.record(student), json.dumps(_plain(record), indent=1) + "\n")
    return record


def _preimports(program) -> list[str]:
    import ast

    names = ["torch"]
    for statement in program.statements:
        if not statement.is_import:
            continue
        try:
            with PARSE_LOCK:
                node = ast.parse(statement.source).body[0]
        except SyntaxError:
            continue
        modules = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if node.level == 0 and node.module else []
        names += [m for m in modules if m.split(".")[0] in PREIMPORT_ALLOWED]
    return list(dict.fromkeys(names))


_PUBLIC_CHECKS: dict[str, str] = {}
_PUBLIC_LOCK = threading.Lock()


def public_check_sources() -> dict[str, str]:
    """Each chapter check module's text without hidden checks (computed once per process)."""
    with _PUBLIC_LOCK, PARSE_LOCK:
        if not _PUBLIC_CHECKS:
            for module in sorted((ROOT / "autograder").glob("ch*.py")):
                try:
                    text = strip_hidden_checks(module.read_text())
                except SyntaxError:
                    text = ""  # a module we cannot strip is hidden entirely
                _PUBLIC_CHECKS[str(module.resolve())] = text
        return dict(_PUBLIC_CHECKS)


def _sandbox_views(chapter: Chapter, paths: Paths, submissions_dir: Path, scratch: Path):
    """What the child must not see, and the check modules it sees instead (public checks only)."""
    hide = [ROOT / "solutions", ROOT / "tests", ROOT / ".git", ROOT / "solved", ROOT / "_build", ROOT / "book",
            ROOT / "autograder" / "expected", paths.out, submissions_dir]
    hide = [str(p.resolve()) for p in hide if p.exists()]
    overlay, hide_files = {}, []
    stripped = scratch / "public_checks"
    stripped.mkdir(exist_ok=True)
    for original, text in public_check_sources().items():
        copy = stripped / Path(original).name
        copy.write_text(text)
        overlay[original] = str(copy)
        hide_files.append(original)
    return hide, hide_files, overlay


def _new_load() -> dict:
    return {"problems": [], "errors": [], "skipped": {}, "seconds": 0.0, "output_tail": ""}


def _not_graded(exercises: dict, error: Exception, load: dict) -> tuple[dict, dict]:
    """Every exercise scores zero, with why the submission could not be graded at all."""
    load["problems"].append(str(error))
    return {n: _failed(e, f"not graded: {error}") for n, e in exercises.items()}, load


def _run_submission(data, chapter, limits, paths, submissions_dir, namespaces, started):
    load = _new_load()
    exercises = {name: REGISTRY[name] for name in chapter.exercises}
    try:
        program = extract(data, chapter.exercises)
    except NotebookUnreadable as error:
        return _not_graded(exercises, error, load)
    load["problems"] += program.problems
    defined = {b for s in program.statements for b in s.binds}
    if not defined & set(chapter.exercises):
        message = "not defined in your notebook (is its cell missing, renamed, or empty?)"
        if program.problems:
            message += f"; {'; '.join(program.problems)[:300]}"
        return {n: _failed(e, f"`{n}` is {message}") for n, e in exercises.items()}, load
    cells = {s.cell: None for s in program.statements}
    from autograder.grading.extract import read_cells

    raw = read_cells(data)
    cells = {c: raw[c] for c in cells}
    preimport = _preimports(program)
    prestart_zygote(preimport, chapter.preload_model)  # imports and loads the model while we do the same
    if chapter.preload_model:
        from autograder.core import check_model

        try:
            check_model()
        except Exception:  # noqa: BLE001 - the checks that need it will say why
            pass
    scratch = Path(tempfile.mkdtemp(prefix="grading-"))
    try:
        hide, hide_files, overlay = _sandbox_views(chapter, paths, submissions_dir, scratch)
        sandbox = Sandbox(program.to_json(), chapter.exercises, cells, limits, scratch=scratch, hide=hide,
                          hide_files=hide_files, overlay=overlay, preimport=preimport,
                          preload_model=chapter.preload_model, namespaces=namespaces,
                          deadline=started + wall_backstop(limits.submission_s))
        try:
            return _check_all(sandbox, program, exercises, load, seed=sha256_bytes(data)), load
        finally:
            sandbox.close()
            load["output_tail"] = sandbox.output_tail()
            load["sandbox"] = {"namespaces": sandbox.namespaces, "starts": sandbox.starts}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _check_all(sandbox: Sandbox, program, exercises: dict, load: dict, *, seed: str) -> dict:
    """Every exercise's checks against the sandbox; hidden checks draw their inputs from ``seed``
    (the submission's hash), so a grade depends on that submission alone and a rerun repeats it."""
    try:
        loaded = sandbox.start()
    except SandboxDied as died:
        load["problems"].append(str(died))
        return {n: _failed(e, f"not graded: {died}") for n, e in exercises.items()}
    load["seconds"] = round(float(loaded.get("seconds", 0.0)), 3)
    statements = program.statements
    describe = lambda k: f"cell {statements[k].cell}, line {statements[k].line}"  # noqa: E731
    for k, why in sandbox.skip.items():
        load["skipped"][describe(k)] = why
        load["problems"].append(f"{describe(k)} {why}; it was skipped")
    for error in loaded.get("errors", []):
        load["errors"].append({"cell": error.get("cell"), "line": error.get("line"), "type": str(error.get("type")),
                               "message": str(error.get("message"))[:300]})
    results = {}
    for name, exercise in exercises.items():
        info = loaded.get("exercises", {}).get(name, {"kind": "missing"})
        if not isinstance(info, dict) or info.get("kind") == "missing":
            why = _why_missing(name, statements, loaded.get("errors", []), sandbox.skip)
            results[name] = _failed(exercise, f"`{name}` is not defined in your notebook{why}")
        elif info.get("kind") == "other":
            results[name] = _failed(exercise, f"`{name}` should be a function or class, got {info.get('type')}")
        else:
            impl = RemoteFunction(ExerciseSession(sandbox, name), info)
            try:
                results[name] = run_exercise(impl, exercise, seed=seed)
            finally:
                sandbox.reset_model()  # hooks or weights one exercise left must not spoil the next
    return results


def _why_missing(name, statements, errors, skipped) -> str:
    for error in reversed(errors):
        k = error.get("k")
        if isinstance(k, int) and 0 <= k < len(statements) and name in statements[k].binds:
            return (f": cell {error.get('cell')} failed ({error.get('type')}: {str(error.get('message'))[:200]}"
                    f"{error.get('where', '')})")
    for k, why in skipped.items():
        if name in statements[k].binds:
            return f": cell {statements[k].cell} {why}"
    return " (is its cell missing, renamed, or empty?)"


# ---------------------------------------------------------------------------------- gradebook


def write_gradebook(paths: Paths, chapter: Chapter, students: list[str]) -> Path:
    """``gradebook.csv``: a row per student (ids and notes spreadsheet-safe: :func:`_as_text`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["student", *chapter.exercises, "total", "notes"])
    writer.writerow(["MAX", *[_num(chapter.max_points[e]) for e in chapter.exercises], _num(chapter.total),
                     f"chapter {chapter.module}: total {_num(chapter.total)} points"])
    for student in sorted(students):
        path = paths.record(student)
        if not path.exists():
            writer.writerow([_as_text(student), *[""] * len(chapter.exercises), "", "not graded yet"])
            continue
        record = json.loads(path.read_text())
        scores = [_num(record["exercises"].get(e, {}).get("score", 0)) for e in chapter.exercises]
        notes = "; ".join(record.get("load", {}).get("problems", []))[:300]
        writer.writerow([_as_text(student), *scores, _num(record["score"]), _as_text(notes)])
    target = paths.out / "gradebook.csv"
    _atomic_write(target, buffer.getvalue())
    return target


def _num(x: float) -> str:
    return f"{x:g}"


def _as_text(text: str) -> str:
    """Text a spreadsheet shows as text: one that starts with ``= + - @`` (or a tab or carriage
    return) would run as a formula (``=HYPERLINK(...)``), so it gets a leading apostrophe."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def is_current(paths: Paths, student: str, path: Path, chapter: Chapter) -> bool:
    """A record exists for this exact submission, graded by this exact grader and checks."""
    try:
        record = json.loads(paths.record(student).read_text())
        data = read_submission(path)
    except (OSError, ValueError):  # NotebookUnreadable is a ValueError: such a file is graded (zero) each run
        return False
    return (record.get("submission_sha256") == sha256_bytes(data) and record.get("chapter") == chapter.module
            and record.get("grader", {}).get("sha256") == chapter.grader_hash)
