"""A learner's start: the first cell of every notebook installs the course where it is missing,
and the environment files pin the same CPU build of torch as the lock."""
import re
import subprocess
import textwrap

import nbformat
import pytest

from course.install_cell import SNIPPET, ensure_install_cell, has_install_cell
from course.notebooks import ROOT, chapter_notebooks
from tests.fresh_venv import clean_env, make_venv, python_for_venv, run

# After the first cell: one check that passes and one that fails, as a learner would see them.
AFTER_INSTALL = textwrap.dedent('''
    import torch
    assert torch.version.cuda is None, f"not the CPU build of torch: {torch.__version__}"
    from autograder import check
    from solutions.ch00_how_it_works import causal_attention_pattern
    assert check(causal_attention_pattern).passed
    def causal_attention_pattern(scores):
        return scores.softmax(dim=-1)
    assert not check(causal_attention_pattern).passed
''')


@pytest.mark.parametrize("notebook", chapter_notebooks(), ids=lambda p: p.stem)
def test_every_learner_notebook_starts_with_the_install_cell(notebook):
    nb = nbformat.read(notebook, as_version=4)
    assert has_install_cell(nb), f"{notebook.name}: run `./run install-cell` to put course/first_cell.py first"


def test_install_cell_is_inserted_before_the_first_code_cell_then_updated_in_place(tmp_path):
    path = tmp_path / "99_new.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 99"), nbformat.v4.new_code_cell("x = 1")])
    nbformat.write(nb, path)
    assert ensure_install_cell(path) == "inserted"
    cells = nbformat.read(path, as_version=4).cells
    assert [c.source for c in cells] == ["# 99", SNIPPET, "x = 1"]
    assert ensure_install_cell(path) == "current"

    nb = nbformat.read(path, as_version=4)
    nb.cells[1].source = "# an older version of the snippet"
    nbformat.write(nb, path)
    assert ensure_install_cell(path) == "updated"
    assert [c.source for c in nbformat.read(path, as_version=4).cells] == ["# 99", SNIPPET, "x = 1"]


def test_the_cell_does_nothing_where_the_course_is_installed(tmp_path):
    """In the course's venv: no clone, no pip, no output, whatever COURSE_REPO says."""
    env = clean_env(COURSE_REPO=str(tmp_path / "no-such-repo"), COURSE_DIR=str(tmp_path / "clone"))
    done = run([str(ROOT / ".venv" / "bin" / "python"), "-c", SNIPPET], cwd=tmp_path, env=env, timeout=60)
    assert done.stdout == "" and not (tmp_path / "clone").exists()


def test_a_clone_opened_without_installing_is_put_on_the_path(tmp_path):
    """A Python without the course, started inside the checkout: the checkout's root is used."""
    env = clean_env(COURSE_REPO=str(tmp_path / "no-such-repo"), COURSE_DIR=str(tmp_path / "clone"))
    script = SNIPPET + "\nimport sys; print(sys.path[0])"
    done = run([python_for_venv(), "-I", "-c", script], cwd=ROOT / "chapters", env=env, timeout=60)
    assert done.stdout.strip() == str(ROOT) and not (tmp_path / "clone").exists()


def _torch_pin(text: str) -> str:
    pins = set(re.findall(r"^\s*-?\s*torch==([\w.+]+)", text, flags=re.M))
    assert len(pins) == 1, f"expected one torch pin, found {pins}"
    return pins.pop()


def test_every_install_route_pins_the_lock_s_torch_and_its_cpu_build():
    lock = _torch_pin((ROOT / "requirements.lock").read_text())
    conda = (ROOT / "environment.yml").read_text()
    assert _torch_pin(conda) == lock and "-r requirements.lock" in conda
    assert "download.pytorch.org/whl/cpu" in conda, "environment.yml would install torch's CUDA build"
    assert f'"torch=={lock}"' in SNIPPET and "download.pytorch.org/whl/cpu" in SNIPPET
    assert f"TORCH_SPEC:-torch=={lock}" in (ROOT / "run").read_text()


@pytest.mark.slow
def test_the_first_cell_installs_the_course_in_a_fresh_environment(tmp_path):
    """Colab or Binder, simulated: a fresh venv, a folder outside any checkout, the course cloned
    from this repository's last commit; torch comes from pip's configured source (offline here)."""
    python = make_venv(tmp_path / "venv")
    notebook_folder = tmp_path / "content"
    notebook_folder.mkdir()
    env = clean_env(COURSE_REPO=f"file://{ROOT}", COURSE_DIR=str(tmp_path / "course"), TORCH_INDEX="")
    done = run([str(python), "-c", SNIPPET + AFTER_INSTALL], cwd=notebook_folder, env=env, timeout=2400)
    assert "installed the course" in done.stdout and "all checks passed" in done.stdout
    again = run([str(python), "-c", SNIPPET + "\nimport autograder"], cwd=notebook_folder, env=env, timeout=120)
    assert again.stdout == "", "the second session reinstalled the course"
    assert subprocess.run(["git", "-C", str(tmp_path / "course"), "status", "--short"],
                          capture_output=True, text=True).stdout == ""
