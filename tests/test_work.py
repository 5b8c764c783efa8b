"""`./run work` gives a learner a git-ignored copy of every chapter and never overwrites it."""
import subprocess

from course.notebooks import ROOT, chapter_notebooks
from course.work import WORK_DIR, copy_learner_notebooks


def test_work_copies_every_chapter_once_and_keeps_the_learners_answers(tmp_path):
    copied, kept = copy_learner_notebooks(tmp_path)
    chapters = chapter_notebooks()
    assert [p.name for p in copied] == [nb.name for nb in chapters] and kept == []
    assert all((tmp_path / nb.name).read_bytes() == nb.read_bytes() for nb in chapters)

    answered = tmp_path / chapters[0].name
    answered.write_text("my answers")
    (tmp_path / chapters[-1].name).unlink()  # as if that chapter had been added to the course since
    copied, kept = copy_learner_notebooks(tmp_path)
    assert answered.read_text() == "my answers", "a learner's notebook was overwritten"
    assert [p.name for p in copied] == [chapters[-1].name]
    assert len(kept) == len(chapters) - 1


def test_the_work_folder_is_ignored_by_git():
    relative = WORK_DIR.relative_to(ROOT) / "00_how_it_works.ipynb"
    done = subprocess.run(["git", "check-ignore", "-q", str(relative)], cwd=ROOT)
    assert done.returncode == 0, f"{relative} would be tracked: add {WORK_DIR.name}/ to .gitignore"


def _notebook(path, *sources):
    import nbformat

    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources]), path)
    return path


def test_progress_reports_each_exercise_without_running_the_whole_notebook(tmp_path):
    """One exercise right, one wrong, one still the stub, the rest absent; a cell that would
    hang (a training loop, say) must not run, nor the check(...) calls."""
    import inspect

    from autograder.progress import format_report, progress
    from solutions.ch04_superposition import feature_importance
    from tests.wrong.ch04_superposition import gaussian_values

    wrong = inspect.getsource(gaussian_values).replace("def gaussian_values(", "def generate_batch(")
    notebook = _notebook(
        tmp_path / "work" / "04_superposition.ipynb",
        "import torch\nfrom torch import Tensor\nfrom autograder import check",
        inspect.getsource(feature_importance),
        "check(feature_importance)",
        wrong,
        "while True:  # a long training loop\n    pass",
        'def toy_forward(W, b, x, relu=True):\n    """stub"""\n    raise NotImplementedError',
    )
    _notebook(tmp_path / "work" / "notes.ipynb", "print('not a chapter')")
    reports = progress(tmp_path / "work", quiet=True, timeout=240)
    assert list(reports) == [str(notebook)]
    report = reports[str(notebook)]
    assert report["feature_importance"]["status"] == "pass"
    assert report["generate_batch"]["status"] == "fail" and report["generate_batch"]["passed"] < report["generate_batch"]["checks"]
    assert report["toy_forward"]["status"] == "todo"
    assert {report[n]["status"] for n in report if n not in ("feature_importance", "generate_batch", "toy_forward")} == {"missing"}
    text = format_report(notebook, report)
    assert text.startswith("04_superposition: 1/10 exercises pass")
    assert "PASS    feature_importance" in text and "FAIL    generate_batch" in text


def test_progress_survives_a_notebook_whose_definitions_hang(tmp_path):
    from autograder.progress import notebook_progress

    notebook = _notebook(tmp_path / "00_how_it_works.ipynb",
                         "import time\nDELAY = time.sleep(600)",
                         "def causal_attention_pattern(scores):\n    return scores.softmax(-1) if DELAY is None else None")
    report = notebook_progress(notebook, timeout=10)
    assert report["causal_attention_pattern"]["status"] == "fail"
    assert "took over 10 s" in report["causal_attention_pattern"]["problem"]


def test_progress_is_one_import_in_a_notebook_and_a_clean_command(tmp_path):
    import sys

    import autograder.progress
    from autograder import progress

    assert progress is autograder.progress and callable(progress)
    assert progress(tmp_path, quiet=True) == {}
    done = subprocess.run([sys.executable, "-m", "autograder.progress", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 1 and "no chapter notebooks" in done.stdout
    assert "Warning" not in done.stderr, done.stderr
