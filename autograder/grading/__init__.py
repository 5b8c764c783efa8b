"""Grading a class: ``python -m autograder.grading SUBMISSIONS --chapter NN_name --out OUT``.

Writes ``OUT/gradebook.csv`` (a row per submission, a column per exercise, a MAX row with the
fixed chapter total), ``OUT/feedback/<student>.md|.html`` and ``OUT/records/<student>.json``.
Learner code runs in a sandboxed child process (:mod:`.child`, :mod:`.sandbox`); the checks and
references run here. Time limits count the sandbox's CPU seconds, so a busy machine grades as a
quiet one does; wall-clock time is only a backstop, ten times longer. A rerun skips
submissions already graded (same submission hash, same grader hash) unless ``--regrade``;
``--only STUDENT`` (repeatable) grades just those.
"""
from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path


def parser() -> argparse.ArgumentParser:
    from autograder.grading.sandbox import Limits

    d = Limits()
    p = argparse.ArgumentParser(prog="python -m autograder.grading", description=__doc__.split("\n\n")[0])
    p.add_argument("submissions", type=Path, help="folder of submitted notebooks (alice.ipynb or alice/*.ipynb)")
    p.add_argument("--chapter", required=True, help="the chapter, e.g. 04_superposition")
    p.add_argument("--out", type=Path, required=True, help="output folder (gradebook, feedback, records)")
    p.add_argument("-j", "--jobs", type=int, default=1, help="submissions graded in parallel")
    p.add_argument("--regrade", action="store_true", help="grade again even if a current record exists")
    p.add_argument("--only", action="append", default=[], metavar="STUDENT", help="grade only this student")
    p.add_argument("--call-timeout", type=float, default=d.call_s, help=f"CPU seconds per call (default {d.call_s:g})")
    p.add_argument("--exercise-timeout", type=float, default=d.exercise_s,
                   help=f"CPU seconds per exercise (default {d.exercise_s:g})")
    p.add_argument("--submission-timeout", type=float, default=d.submission_s,
                   help=f"CPU seconds per submission (default {d.submission_s:g})")
    p.add_argument("--statement-timeout", type=float, default=d.statement_s,
                   help=f"CPU seconds per top-level statement of the notebook (default {d.statement_s:g})")
    p.add_argument("--memory-mb", type=int, default=d.memory_mb,
                   help=f"memory per sandbox beyond torch (default {d.memory_mb})")
    p.add_argument("--no-namespaces", action="store_true",
                   help="do not use unshare (network/mount/pid namespaces) even where available")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    return p


def _results(todo: dict, jobs: int, function, **kwargs):
    """(student, record or exception) as each submission finishes. Parallel work uses processes,
    not threads: each has its own torch random state, which seeded checks rely on."""
    if jobs <= 1:
        for student, path in todo.items():
            try:
                yield student, function(student, path, **kwargs)
            except Exception as error:  # noqa: BLE001
                yield student, error
        return
    import multiprocessing

    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(function, s, p, **kwargs): s for s, p in todo.items()}
        for future in as_completed(futures):
            try:
                yield futures[future], future.result()
            except Exception as error:  # noqa: BLE001
                yield futures[future], error


def _grade(student, path, **kwargs) -> dict:
    from autograder.grading.grade import grade_one

    record = grade_one(student, path, **kwargs)
    return {"score": record["score"], "max_score": record["max_score"]}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    from tqdm.auto import tqdm

    from autograder.grading.grade import Paths, is_current, load_chapter, write_gradebook
    from autograder.grading.submissions import find_submissions
    from autograder.grading.sandbox import Limits, namespaces_available

    if not args.submissions.is_dir():
        print(f"no such folder: {args.submissions}", file=sys.stderr)
        return 2
    chapter = load_chapter(args.chapter)
    limits = Limits(call_s=args.call_timeout, exercise_s=args.exercise_timeout, submission_s=args.submission_timeout,
                    memory_mb=args.memory_mb, statement_s=args.statement_timeout,
                    load_s=min(Limits().load_s, args.submission_timeout))
    paths = Paths(args.out)
    paths.records.mkdir(parents=True, exist_ok=True)
    paths.feedback.mkdir(parents=True, exist_ok=True)
    submissions = find_submissions(args.submissions)
    unknown = [s for s in args.only if s not in submissions]
    if unknown:
        print(f"no submission for {', '.join(unknown)} in {args.submissions}", file=sys.stderr)
        return 2
    chosen = {s: p for s, p in submissions.items() if not args.only or s in args.only}
    todo = {s: p for s, p in chosen.items() if args.regrade or not is_current(paths, s, p, chapter)}
    namespaces = False if args.no_namespaces else namespaces_available()
    write_gradebook(paths, chapter, list(submissions))
    failures = 0
    with tqdm(total=len(todo), desc=f"grading {chapter.module}", unit="submission", disable=args.quiet) as bar:
        for student, record in _results(todo, args.jobs, _grade, chapter=chapter, limits=limits, paths=paths,
                                        submissions_dir=args.submissions.resolve(), namespaces=namespaces):
            if isinstance(record, Exception):  # grade_one records its own failures; belt and braces
                failures += 1
                tqdm.write(f"{student}: grader error {record!r}")
            else:
                bar.set_postfix_str(f"{student}: {record['score']:g}/{record['max_score']:g}")
            write_gradebook(paths, chapter, list(submissions))
            bar.update(1)
    gradebook = write_gradebook(paths, chapter, list(submissions))
    if not args.quiet:
        skipped = len(chosen) - len(todo)
        print(f"graded {len(todo)} submission(s), {skipped} already current; chapter total {chapter.total:g} points; "
              f"sandbox namespaces {'on' if namespaces else 'off'}; gradebook: {gradebook}")
    return 1 if failures else 0
