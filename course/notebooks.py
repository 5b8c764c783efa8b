"""One source for notebooks: learner notebooks hold stubs, solved notebooks are generated.

A learner notebook ``chapters/NN_name/NN_name.ipynb`` marks each exercise cell with the cell tag
``exercise``; that cell defines exactly one function or class, whose name is the exercise id and
whose body is its docstring and ``raise NotImplementedError``. The solved notebook is the same
notebook with each exercise cell's source replaced by the reference from
``solutions/chNN_name.py`` and folded in the book (tag ``hide-input``). It is written to
``solved/NN_name.ipynb`` by ``python -m course solve`` and never edited by hand.
"""
from __future__ import annotations

import ast
import copy
import importlib
import inspect
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS_DIR = ROOT / "chapters"
SOLVED_DIR = ROOT / "solved"
EXERCISE_TAG = "exercise"


def chapter_notebooks() -> list[Path]:
    """Every learner notebook, in chapter order."""
    return sorted(CHAPTERS_DIR.glob("[0-9][0-9]_*/[0-9][0-9]_*.ipynb"))


def module_name(notebook: Path) -> str:
    """``chapters/04_superposition/04_superposition.ipynb`` -> ``ch04_superposition``."""
    return "ch" + notebook.stem


def exercise_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code" and EXERCISE_TAG in c.metadata.get("tags", [])]


def defined_name(source: str) -> str:
    """The one function or class an exercise cell defines."""
    definitions = [n for n in ast.parse(source).body
                   if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    if len(definitions) != 1:
        raise ValueError(f"an exercise cell must define exactly one function or class:\n{source[:200]}")
    return definitions[0].name


def stub_signature(source: str) -> list[str]:
    """Parameter names of the stub in an exercise cell (a class's ``__init__`` without self)."""
    node = next(n for n in ast.parse(source).body if isinstance(n, (ast.FunctionDef, ast.ClassDef)))
    if isinstance(node, ast.ClassDef):
        node = next(n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    a = node.args
    names = [p.arg for p in a.posonlyargs + a.args + ([a.vararg] if a.vararg else []) + a.kwonlyargs
             + ([a.kwarg] if a.kwarg else [])]
    return [n for n in names if n != "self"]


def solve(notebook: Path) -> nbformat.NotebookNode:
    """The solved notebook: every exercise cell replaced by its reference, folded."""
    nb = nbformat.read(notebook, as_version=4)
    solved = copy.deepcopy(nb)
    module = importlib.import_module(f"solutions.{module_name(notebook)}")
    for cell in exercise_cells(solved):
        name = defined_name(cell.source)
        cell.source = inspect.getsource(getattr(module, name)).rstrip() + "\n"
        cell.metadata["tags"] = [*cell.metadata.get("tags", []), "hide-input"]
        cell.outputs, cell.execution_count = [], None
    return solved


def write_solved(notebooks: list[Path] | None = None, directory: Path = SOLVED_DIR) -> list[Path]:
    """Write ``solved/NN_name.ipynb`` (or into ``directory``) for every chapter; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for notebook in notebooks or chapter_notebooks():
        target = directory / notebook.name
        nbformat.write(solve(notebook), target)
        written.append(target)
    return written


def stubs(notebook: Path) -> dict[str, object]:
    """Execute the notebook's exercise cells (the stubs) and return what they define, by name.

    They run in a namespace holding the reference module's imports, so type hints resolve
    without running the rest of the notebook.
    """
    module = importlib.import_module(f"solutions.{module_name(notebook)}")
    namespace = {k: v for k, v in vars(module).items() if not inspect.isfunction(v) and not inspect.isclass(v)
                 or getattr(v, "__module__", None) != module.__name__}
    found = {}
    for cell in exercise_cells(nbformat.read(notebook, as_version=4)):
        exec(compile(cell.source, f"<stub {notebook.stem}>", "exec"), namespace)
        name = defined_name(cell.source)
        found[name] = namespace[name]
    return found
