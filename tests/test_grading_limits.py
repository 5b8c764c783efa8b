"""Grading a class: no file hangs or floods the grader, no result is lost, and a busy machine
grades as a quiet one does (limits count CPU time, not wall-clock time)."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from autograder.grading import main
from autograder.grading.extract import MAX_STATEMENTS, NotebookUnreadable, extract
from autograder.grading.grade import Paths, load_chapter, write_gradebook
from autograder.grading.submissions import find_submissions
from autograder.grading.sandbox import ROOT
from tests.grading_fixtures.load import cpu_hogs
from tests.grading_fixtures.make_submissions import make_submissions


def _nb(*sources: str) -> bytes:
    return json.dumps({"cells": [{"cell_type": "code", "source": s, "metadata": {}} for s in sources],
                       "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()


def test_a_busy_machine_grades_as_a_quiet_one(tmp_path):
    """``slow_but_correct`` spends 1.2 CPU seconds in a top-level cell and 0.6 in its first call:
    within limits of 2 CPU seconds, but not within 2 wall-clock seconds on a machine with twice as
    many spinning processes as cores."""
    subs = tmp_path / "submissions"
    make_submissions("ch04_superposition", subs, outside=tmp_path / "pwned.txt", cases=["correct", "slow_but_correct"])
    limits = ["--call-timeout", "10", "--exercise-timeout", "30", "--statement-timeout", "2", "--submission-timeout",
              "120", "-j", "2", "--quiet"]
    books = []
    for load in (0, 2 * os.cpu_count()):
        out = tmp_path / f"out{load}"
        with cpu_hogs(load):
            assert main([str(subs), "--chapter", "04_superposition", "--out", str(out), *limits]) == 0
        books.append((out / "gradebook.csv").read_text())
    assert books[0] == books[1]
    rows = {row[0]: row for row in csv.reader(books[1].splitlines())}
    assert rows["slow_but_correct"][1:] == rows["correct"][1:] and rows["correct"][-2] == rows["MAX"][-2], rows


def test_what_is_not_a_readable_notebook_scores_zero_and_the_batch_goes_on(tmp_path):
    """A FIFO (reading it would block forever), a 4 GB sparse file (it must not be read whole),
    a folder named like a notebook: each scores zero with a note; the correct one is graded."""
    subs, out = tmp_path / "submissions", tmp_path / "out"
    make_submissions("ch00_how_it_works", subs, outside=tmp_path / "pwned.txt", cases=["correct"])
    os.mkfifo(subs / "fifo.ipynb")
    with open(subs / "sparse.ipynb", "wb") as f:
        f.truncate(4 * 2**30)
    (subs / "folder.ipynb").mkdir()
    script = ("import resource, sys\nfrom autograder.grading import main\ncode = main(sys.argv[1:])\n"
              "print('peak MB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)\nsys.exit(code)")
    done = subprocess.run([sys.executable, "-c", script, str(subs), "--chapter", "00_how_it_works", "--out", str(out),
                           "-j", "1", "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    # Grading alone peaks at about 1.2-1.7 GB here (torch, the checks); reading the file whole
    # would add its 4 GB, so 3 GB separates the two with room on either side.
    assert int(done.stdout.split("peak MB")[-1]) < 3000, done.stdout
    rows = {row[0]: row for row in csv.reader((out / "gradebook.csv").open())}
    assert rows["correct"][-2] == rows["MAX"][-2]
    for student, why in [("fifo", "not a regular file"), ("folder", "not a regular file"), ("sparse", "4096 MB")]:
        assert rows[student][-2] == "0" and why in rows[student][-1], rows[student]
        record = json.loads((out / "records" / f"{student}.json").read_text())
        assert record["score"] == 0 and why in record["load"]["problems"][0]


def test_student_ids_are_distinct_and_harmless_in_a_spreadsheet(tmp_path):
    subs = tmp_path / "submissions"
    subs.mkdir()
    names = ["a b", "a_b", "a?b", "=HYPERLINK(1)", "+1", "-2", "@SUM(A1)"]
    for name in names:
        (subs / f"{name}.ipynb").write_text("{}")
    found = find_submissions(subs)
    assert sorted(p.name for p in found.values()) == sorted(f"{n}.ipynb" for n in names)
    assert found["a_b"].name == "a_b.ipynb"  # a name that needs no cleaning keeps its id
    assert found == find_submissions(subs)  # the same ids on every run, so a rerun resumes
    paths = Paths(tmp_path / "out")
    chapter = load_chapter("00_how_it_works")
    noted = next(s for s in found if s.startswith("@"))
    paths.records.mkdir(parents=True)
    paths.record(noted).write_text(json.dumps({"exercises": {}, "score": 0,
                                               "load": {"problems": ["=cmd|' /C calc'!A0"]}}))
    rows = list(csv.reader(write_gradebook(paths, chapter, list(found)).open()))
    assert len(rows) == 2 + len(names)
    for row in rows:
        assert not any(cell[:1] in ("=", "+", "-", "@") for cell in row), row


def test_extraction_refuses_a_notebook_with_too_many_statements_and_slices_long_chains():
    chain = ["x0 = 0", *(f"x{i} = x{i - 1} + 1" for i in range(1, MAX_STATEMENTS)), "def f():\n    return x0"]
    with pytest.raises(NotebookUnreadable, match="statements"):
        extract(_nb("\n".join(chain)), ["f"])
    n = MAX_STATEMENTS // 2  # a long chain of needed names: every link is kept
    chain = ["x0 = 0", *(f"x{i} = x{i - 1} + 1" for i in range(1, n)), f"def f():\n    return x{n - 1}", "y = 1"]
    program = extract(_nb("\n".join(chain)), ["f"])
    assert len(program.statements) == n + 1 and program.statements[0].source == "x0 = 0"
