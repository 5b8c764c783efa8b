"""From a submitted notebook to the program the sandbox runs: tolerant, reproducible, cheap.

A submission is whatever the learner's notebook file holds: cells reordered, duplicated,
deleted or retyped, magics, shell lines, cells that fail. :func:`extract` turns it into a list
of top-level statements, in notebook order, that the child executes one by one (a failing
statement is recorded and skipped, never fatal):

* magics (``%...``, ``%%...``), shell lines (``!...``, ``x = !ls``) and help lines (``obj?``)
  are removed; a cell that still does not parse is recorded as a syntax error and skipped;
* imports run first (imports are idempotent, and hoisting them makes a definition that
  precedes its imports in the file still work), only those that bind a name the kept code reads;
* then only the statements the exercises need are kept (a slice from the exercise names over
  the names each statement may bind and the globals it reads, computed with :mod:`symtable`), so the
  grader does not re-run training loops, plots or ``check(...)`` calls: whatever the learner
  defined LAST under an exercise's name is what gets graded.

This module only parses (it never runs learner code), so it is safe in the trusted parent; its
work is linear in the size of the code, which is capped (:data:`MAX_CODE_CHARS`,
:data:`MAX_STATEMENTS`): a notebook beyond the caps is refused, not sliced for minutes.
"""
from __future__ import annotations

import ast
import json
import re
import symtable
import threading
from dataclasses import dataclass, field

MAX_NOTEBOOK_BYTES = 50 * 2**20  # the whole file, outputs included
MAX_CODE_CHARS = 1_000_000  # the code cells together: ten times a long notebook's
MAX_STATEMENTS = 5000  # top-level statements: ten times a long notebook's
_KEEP_BODY_MAGICS = {"time", "timeit", "capture", "prun", "memit", "skip"}
_LINE_MAGIC = re.compile(r"^(\s*)(%|!|[\w.,\s\[\]]+=\s*[!%])")


class NotebookUnreadable(ValueError):
    """The file is not a notebook we can read (malformed JSON, wrong structure, too large)."""


@dataclass
class Statement:
    cell: int  # index of the cell in the notebook
    line: int  # first line in that cell (1-based)
    source: str
    binds: list[str]
    is_import: bool


@dataclass
class Program:
    statements: list[Statement]  # what the child executes, in order
    problems: list[str] = field(default_factory=list)  # cells that could not be parsed
    n_cells: int = 0

    def to_json(self) -> list[dict]:
        return [{"cell": s.cell, "line": s.line, "source": s.source, "is_import": s.is_import}
                for s in self.statements]


def too_large(size: int) -> str:
    return f"the notebook is {size / 2**20:.0f} MB, more than {MAX_NOTEBOOK_BYTES // 2**20} MB"


def read_cells(data: bytes) -> list[str]:
    """The sources of the code cells of a notebook file, leniently (no schema validation)."""
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise NotebookUnreadable(too_large(len(data)))
    try:
        nb = json.loads(data.decode("utf-8", errors="replace"))
    except (ValueError, RecursionError) as error:
        raise NotebookUnreadable(f"the notebook is not valid JSON ({str(error)[:120]}); was it saved completely?") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells", []), list):
        raise NotebookUnreadable("the file is JSON but not a Jupyter notebook (no list of cells)")
    sources = []
    for cell in nb.get("cells", []):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            sources.append(None)
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(s for s in source if isinstance(s, str))
        sources.append(source if isinstance(source, str) else "")
    chars = sum(len(s) for s in sources if s)
    if chars > MAX_CODE_CHARS:
        raise NotebookUnreadable(f"the notebook's code cells hold {chars:,} characters, more than {MAX_CODE_CHARS:,}")
    return sources


def strip_magics(source: str) -> str | None:
    """Plain Python from an IPython cell, line numbers kept; None for a whole-cell magic."""
    lines = source.split("\n")
    if lines and lines[0].lstrip().startswith("%%"):
        magic = lines[0].lstrip()[2:].split()[0] if lines[0].lstrip()[2:].split() else ""
        if magic not in _KEEP_BODY_MAGICS:
            return None  # %%bash, %%writefile, %%html...: not Python
        lines[0] = ""
    out = []
    for line in lines:
        match = _LINE_MAGIC.match(line)
        if match or line.rstrip().endswith("?") and not line.lstrip().startswith("#"):
            indent = match.group(1) if match else line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}pass")
        else:
            out.append(line)
    return "\n".join(out)


def _reads(source: str, node: ast.stmt) -> set[str]:
    """Global names a top-level statement reads, including from inside its functions/classes."""
    try:
        table = symtable.symtable(source, "<cell>", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    names: set[str] = set()

    def visit(t: symtable.SymbolTable, top: bool) -> None:
        for sym in t.get_symbols():
            if sym.is_referenced() and (top or sym.is_global()):
                names.add(sym.get_name())
        for child in t.get_children():
            visit(child, False)

    visit(table, True)
    return names


def _walk_scope(node: ast.AST):
    """``ast.walk`` over the nodes evaluated in the top-level scope (not function/class bodies)."""
    todo = [node]
    while todo:
        n = todo.pop()
        yield n
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)) and n is not node \
                or isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            children = list(getattr(n, "decorator_list", [])) + list(getattr(n, "bases", []))
            args = getattr(n, "args", None)
            if isinstance(args, ast.arguments):
                children += [d for d in args.defaults + args.kw_defaults if d is not None]
            todo.extend(children)
        else:
            todo.extend(ast.iter_child_nodes(n))


def _binds(node: ast.stmt) -> tuple[set[str], set[str]]:
    """(names the statement may bind, names it surely binds: a def, class or plain assignment)."""
    may: set[str] = set()
    for n in _walk_scope(node):
        if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
            may.add(n.id)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            may.add(n.name)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            may.update((a.asname or a.name).split(".")[0] for a in n.names)
        elif isinstance(n, (ast.Global, ast.Nonlocal)):
            may.update(n.names)
    sure: set[str] = set()
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        sure.add(node.name)
    elif isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
        sure.update(t.id for t in node.targets)
    return may, sure


PARSE_LOCK = threading.Lock()  # CPython 3.11's ast/symtable are not safe to run in parallel threads


def extract(data: bytes, exercises: list[str], *, slice_program: bool = True) -> Program:
    """The program that defines ``exercises`` from a notebook file's bytes (see module doc)."""
    with PARSE_LOCK:
        return _extract(data, exercises, slice_program)


def _slice(parsed: list[tuple[int, ast.stmt, str]], exercises: list[str]) -> tuple[list[bool], set[str]]:
    """(which statements to keep, the names they need). Functions read globals when they are
    called, after every statement has run, so the slice ignores order: keep whatever may bind a
    needed name, until nothing new is needed. A worklist of names makes it linear: each name is
    looked up once, and each statement's reads are computed once, when it is first kept."""
    binders: dict[str, list[int]] = {}
    for i, (_, node, _) in enumerate(parsed):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):  # imports are decided afterwards
            for name in _binds(node)[0]:
                binders.setdefault(name, []).append(i)
    keep = [False] * len(parsed)
    needed, todo = set(exercises), list(exercises)
    while todo:
        for i in binders.pop(todo.pop(), ()):
            if not keep[i]:
                keep[i] = True
                new = _reads(parsed[i][2], parsed[i][1]) - needed
                needed |= new
                todo.extend(new)
    return keep, needed


def _extract(data: bytes, exercises: list[str], slice_program: bool) -> Program:
    cells = read_cells(data)
    problems: list[str] = []
    parsed: list[tuple[int, ast.stmt, str]] = []
    for index, raw in enumerate(cells):
        if raw is None or not raw.strip():
            continue
        source = raw
        try:
            try:
                tree = ast.parse(source)
            except SyntaxError:  # IPython syntax (magics, shell, help)? Python without it.
                source = strip_magics(raw)
                if source is None:
                    continue
                tree = ast.parse(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
            where = f" (line {error.lineno})" if isinstance(error, SyntaxError) and error.lineno else ""
            problems.append(f"cell {index} was skipped: {type(error).__name__}: {getattr(error, 'msg', error)}{where}")
            continue
        lines = source.split("\n")
        for node in tree.body:
            text = "\n".join(lines[node.lineno - 1: node.end_lineno])
            if node.col_offset:
                text = text[node.col_offset:]
            parsed.append((index, node, text))
        if len(parsed) > MAX_STATEMENTS:
            raise NotebookUnreadable(f"the notebook has more than {MAX_STATEMENTS} top-level statements")
    if slice_program:
        keep, needed = _slice(parsed, exercises)
    else:
        keep, needed = [not isinstance(node, (ast.Import, ast.ImportFrom)) for _, node, _ in parsed], set()
    for i, (index, node, text) in enumerate(parsed):  # imports run first, so they serve every statement
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            star = any(a.name == "*" for a in node.names)
            keep[i] = not slice_program or star or bool(_binds(node)[0] & needed)
    imports, rest = [], []
    for (index, node, text), kept in zip(parsed, keep):
        if not kept:
            continue
        is_import = isinstance(node, (ast.Import, ast.ImportFrom))
        statement = Statement(index, node.lineno, text, sorted(_binds(node)[0]), is_import)
        (imports if is_import else rest).append(statement)
    return Program(imports + rest, problems, len(cells))
