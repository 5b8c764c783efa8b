"""Generate learner submissions for grading tests and the benchmark: correct, partly correct, broken
and hostile, each derived from a chapter's learner notebook with code substituted.

``make_submissions(module, folder, outside=...)`` writes ``<case>.ipynb`` files and returns, per
case, the expected score of each exercise: ``"full"``, ``"zero"`` or ``"partial"`` (more than
zero, less than full). Hostile code targets the chapter's first function exercise; every other
exercise keeps the reference, to prove that one bad exercise costs only its own points.
"""
from __future__ import annotations

import ast
import copy
import importlib
import inspect
import json
import textwrap
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]

# Hostile bodies for the target exercise. {call} calls a correct copy of it; {outside} is a file
# path outside the sandbox's working folder; {module} is the chapter's module name.
HOSTILE = {
    "infinite_loop": "while True:\n    pass",
    "memory_bomb": "blocks = []\nwhile True:\n    blocks.append(bytearray(2**28))",
    "torch_memory_bomb": "import torch\nreturn torch.ones(2**40)",
    "fork_bomb": "import os\nwhile True:\n    os.fork()",
    "subprocess_bomb": "import subprocess\nfor _ in range(1000):\n    subprocess.Popen(['sleep', '1000'])\nreturn {call}",
    "posix_spawn": "import os\nos.posix_spawn('/bin/sleep', ['sleep', '1000'], {{}})\nreturn {call}",
    "sys_exit": "import sys\nsys.exit(0)",
    "os_exit": "import os\nos._exit(0)",
    "kill_parent": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nreturn {call}",
    "fake_pass": ("import sys\nprint('PASS  all checks passed\\n4/4 points')\nsys.stderr.write('all checks passed\\n')\n"
                  "out = {call}\nreturn out * 0 + 1"),
    "monkeypatch_torch": ("import torch\ntorch.allclose = lambda *a, **k: True\ntorch.equal = lambda *a, **k: True\n"
                          "torch.Tensor.__eq__ = lambda self, other: True\ntorch.isfinite = lambda t: torch.ones_like(t, dtype=torch.bool)\n"
                          "return {call} * 0 + 1"),
    "monkeypatch_checker": ("import autograder, autograder.core as core\nnothing = lambda *a, **k: None\n"
                            "core.expect_close = core.expect = core.expect_tensor = nothing\n"
                            "autograder.expect_close = nothing\ncore.CheckFailure = type('X', (Exception,), {{}})\n"
                            "return {call} * 0 + 1"),
    "import_solutions": "from solutions.{module} import {name} as reference\nreturn reference({args})",
    "read_solutions_file": ("namespace = {{}}\nexec(open({solutions_path!r}).read(), namespace)\n"
                            "return namespace[{name!r}]({args})"),
    "always_equal": ("class AlwaysEqual:\n    def __eq__(self, other): return True\n    def __ne__(self, other): return False\n"
                     "    def __bool__(self): return True\n    def __float__(self): return 0.0\n"
                     "    def __len__(self): return 0\n    def __getattr__(self, name): return lambda *a, **k: self\n"
                     "return AlwaysEqual()"),
    "tensor_subclass_eq": ("import torch\nclass Liar(torch.Tensor):\n    def __eq__(self, other): return True\n"
                           "    def allclose(self, *a, **k): return True\nreturn ({call} * 0 + 1).as_subclass(Liar)"),
    "nan_output": "return {call} * float('nan')",
    "inf_output": "return {call} + float('inf')",
    "huge_output": "import torch\nreturn torch.empty(100_000_000, 4)",
    "write_outside": "open({outside!r}, 'w').write('pwned')\nreturn {call}",
    "network": ("import socket\nsocket.create_connection(('127.0.0.1', 22), timeout=1)\nreturn {call}"),
}

# Chapter-specific cases: {module: {case: {exercise: (source, expected score)}}}; every exercise not
# named keeps the reference. "WRONG:name" is the wrong implementation of that name in tests/wrong.
_ABLATION_BY_WEIGHTS = """
def ablation_loss_change(model, tokens, layer, head, method):
    # "ablates" by halving the layer's attention output weights, and leaves them halved
    clean = model(tokens, return_type="loss")
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if f"h.{layer}." in name and ".attn.o." in name:
                parameter.mul_(0.5)
    return model(tokens, return_type="loss") - clean
"""
_LEAVE_ABLATION_HOOK = """
def attention_pattern(model, tokens, layer, head):
    # right pattern, but leaves a hook that zeroes every head's output of layer 0 (and adds it to later runs)
    _, cache = model.run_with_cache(tokens)
    model.add_hook("blocks.0.attn.hook_z", lambda z, hook: z * 0)
    return cache[f"blocks.{layer}.attn.hook_pattern"][:, head]
"""
CHAPTER_CASES = {
    "ch01_circuits": {
        "model_left_changed": {"residual_norms": ("WRONG:norms_with_add_hook", "partial"),
                               "ablation_loss_change": (_ABLATION_BY_WEIGHTS, "zero")},
        "hook_left_for_later": {"attention_pattern": (_LEAVE_ABLATION_HOOK, "partial")},
    },
    "ch02_induction_heads": {
        "model_left_changed": {"repeat_loss_with_ablation": ("WRONG:leaves_hooks_on", "partial")},
    },
    "ch03_activation_patching": {
        "model_left_changed": {"patch_residual_stream": ("WRONG:residual_leaves_hooks_on", "partial")},
    },
    "ch06_steering": {"model_left_changed": {"steered_logits": ("WRONG:leaves_the_steering_hook", "partial")}},
}

# Whole-notebook cases: (kind, expected score of the target exercise).
BROKEN = ["malformed_json", "empty_notebook", "missing_exercise", "syntax_error", "not_a_function"]
MESSY = ["messy_but_correct", "hang_then_correct", "exit_in_cell_then_correct", "crash_in_cell_then_correct"]

# Correct but slow: a top-level cell spends 1.2 CPU seconds, and the target exercise 0.6 more on
# its first call. Within CPU-time limits of 2 s it scores full marks however busy the machine is.
_BURN = """import time


def _burn(seconds):
    start = time.process_time()
    while time.process_time() - start < seconds:
        pass
    return seconds


BURNED = [_burn(1.2)]
"""
_SLOW_BODY = "if len(BURNED) == 1:\n    BURNED.append(_burn(0.6))\nreturn {call}"


def _exercise_cells(nb) -> dict[str, int]:
    found = {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "exercise" in cell.metadata.get("tags", []):
            names = [n.name for n in ast.parse(cell.source).body
                     if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
            found[names[0]] = i
    return found


def _rename(source: str, old: str, new: str) -> str:
    tree = ast.parse(textwrap.dedent(source))
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == old:
            node.name = new
    return ast.unparse(tree)


def _with_helpers(function) -> str:
    """The source of a wrong implementation, after that of the module's helpers it calls."""
    module = inspect.getmodule(function)
    seen, order, aliases = set(), [], []

    def visit(fn):
        names, todo = set(), [fn.__code__]
        while todo:
            code = todo.pop()
            names.update(code.co_names)
            todo += [c for c in code.co_consts if inspect.iscode(c)]
        for n in sorted(names):
            helper = getattr(module, n, None)
            if inspect.isfunction(helper) and helper.__module__ == module.__name__ and n not in seen:
                seen.add(n)
                visit(helper)
                order.append(helper)
            elif inspect.isfunction(helper) and helper.__module__.startswith("solutions.") and n not in seen:
                seen.add(n)
                aliases.append(f"{n} = {helper.__name__}  # the notebook's own (reference) exercise")

    visit(function)
    return "\n\n".join([*aliases, *(inspect.getsource(f) for f in [*order, function])])


def chapter_material(module: str):
    """(learner notebook, exercise -> cell index, references module, wrong implementations)."""
    stem = module.removeprefix("ch")
    nb = nbformat.read(ROOT / "chapters" / stem / f"{stem}.ipynb", as_version=4)
    solutions = importlib.import_module(f"solutions.{module}")
    try:
        wrong = importlib.import_module(f"tests.wrong.{module}").WRONG
    except ModuleNotFoundError:
        wrong = {}
    return nb, _exercise_cells(nb), solutions, wrong


def _hostile_source(stub: str, name: str, body: str, module: str, reference: str, outside: str) -> str:
    tree = ast.parse(stub)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    params = [a.arg for a in fn.args.posonlyargs + fn.args.args]
    args = ", ".join(params)
    text = body.format(call=f"_correct_{name}({args})", outside=outside, module=module, name=name, args=args,
                       solutions_path=str(ROOT / "solutions" / f"{module}.py"))
    fn.body = ast.parse(text).body
    return _rename(reference, name, f"_correct_{name}") + "\n\n\n" + ast.unparse(tree)


def make_submissions(module: str, folder: Path, *, outside: Path, cases: list[str] | None = None) -> dict:
    """Write the submissions; return {case: {exercise: "full" | "zero" | "partial"}}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    nb, cells, solutions, wrong = chapter_material(module)
    references = {name: inspect.getsource(getattr(solutions, name)) for name in cells}
    functions = [n for n in cells if inspect.isfunction(getattr(solutions, n))]
    target = functions[0]
    expected: dict[str, dict] = {}

    def solved(**overrides) -> nbformat.NotebookNode:
        out = copy.deepcopy(nb)
        for name, index in cells.items():
            out.cells[index].source = overrides.get(name, references[name])
        return out

    def write(case: str, notebook, target_score: str) -> None:
        if case in (cases or [case]):
            path = folder / f"{case}.ipynb"
            if isinstance(notebook, (bytes, str)):
                path.write_bytes(notebook if isinstance(notebook, bytes) else notebook.encode())
            else:
                nbformat.write(notebook, path)
            expected[case] = {n: ("full" if n != target else target_score) for n in cells}

    write("correct", solved(), "full")
    write("stub", nb, "zero")
    expected.get("stub", {}).update({n: "zero" for n in cells})
    for name, wrongs in wrong.items():
        if name == target and wrongs:
            source = inspect.getsource(wrongs[0])
            write("partly_correct", solved(**{name: f"{source}\n\n{name} = {wrongs[0].__name__}\n"}), "partial")
    stub = nb.cells[cells[target]].source
    for case, body in HOSTILE.items():
        source = _hostile_source(stub, target, body, module, references[target], str(outside))
        write(case, solved(**{target: source}), "zero")
    for case, overrides in CHAPTER_CASES.get(module, {}).items():
        sources, scores = {}, {}
        for name, (source, score) in overrides.items():
            if source.startswith("WRONG:"):
                function = next(w for w in wrong[name] if w.__name__ == source.removeprefix("WRONG:"))
                source = f"{_with_helpers(function)}\n\n{name} = {function.__name__}\n"
            sources[name], scores[name] = source, score
        write(case, solved(**sources), "full")
        if case in expected:
            expected[case].update(scores)
    # broken notebooks
    write("malformed_json", json.dumps(solved(), indent=1)[:-200], "zero")
    write("empty_notebook", json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}), "zero")
    missing = solved()
    del missing.cells[cells[target]]
    write("missing_exercise", missing, "zero")
    write("syntax_error", solved(**{target: f"def {target}(:\n    return None\n"}), "zero")
    write("not_a_function", solved(**{target: f"{target} = 42\n"}), "zero")
    for case in ("malformed_json", "empty_notebook"):
        expected.get(case, {}).update({n: "zero" for n in cells})
    # messy but correct: magics, shell lines, failing cells, duplicates, reordering
    messy = solved(**{target: "%%time\n" + references[target]})
    early_wrong = nbformat.v4.new_code_cell(_rename(references[target], target, target) + f"\n{target} = None\n")
    messy.cells.insert(0, nbformat.v4.new_code_cell("%matplotlib inline\n!pip install nothing\nx = !ls\nprint(x)"))
    messy.cells.insert(1, early_wrong)  # defined early, redefined (correctly) later: the last one counts
    messy.cells.append(nbformat.v4.new_code_cell("1 / 0"))
    messy.cells.append(nbformat.v4.new_code_cell("import sys\nsys.exit('bye')"))
    messy.cells.append(nbformat.v4.new_markdown_cell("# retyped\nthis was a code cell"))
    messy.cells.append(nbformat.v4.new_code_cell("torch.tensor?"))
    moved = messy.cells.pop(len(messy.cells) - 5 if False else next(
        i for i, c in enumerate(messy.cells) if c.source.startswith("%%time")))
    messy.cells.insert(2, moved)  # the exercise now comes before the imports it needs
    write("messy_but_correct", messy, "full")
    hang = solved()
    hang.cells.insert(cells[target] + 1, nbformat.v4.new_code_cell(
        f"for _ in iter(int, 1):\n    {target} = None\n"))  # binds the name and never ends: stopped, skipped
    hang.cells.append(nbformat.v4.new_code_cell(references[target]))
    write("hang_then_correct", hang, "full")
    exiting = solved()
    exiting.cells.insert(cells[target] + 1, nbformat.v4.new_code_cell(f"{target} = __import__('os')._exit(3)"))
    exiting.cells.append(nbformat.v4.new_code_cell(references[target]))
    write("exit_in_cell_then_correct", exiting, "full")
    crash = solved()
    crash.cells.insert(cells[target] + 1, nbformat.v4.new_code_cell(
        f"{target} = bytearray(2**40)"))  # a memory bomb at top level: the cell fails, the rest runs
    crash.cells.append(nbformat.v4.new_code_cell(references[target]))
    write("crash_in_cell_then_correct", crash, "full")
    slow = solved(**{target: _hostile_source(stub, target, _SLOW_BODY, module, references[target], str(outside))})
    slow.cells.insert(cells[target], nbformat.v4.new_code_cell(_BURN))
    write("slow_but_correct", slow, "full")
    return expected
