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
