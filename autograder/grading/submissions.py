"""The submissions folder: which files are whose, and reading them without trusting them.

A submissions folder comes from a learning platform's export, or from learners themselves: names
with spaces and punctuation, two names that look alike, files that are not notebooks at all (a
FIFO, a folder named ``x.ipynb``, a 3 GB sparse file). Nothing here may hang, flood memory or
lose a submission: :func:`find_submissions` gives every file its own stable id, and
:func:`read_submission` reads only a regular file, capped before reading.
"""
from __future__ import annotations

import collections
import hashlib
import os
import re
import stat
from pathlib import Path

from autograder.grading.extract import MAX_NOTEBOOK_BYTES, NotebookUnreadable, too_large


def find_submissions(folder: Path) -> dict[str, Path]:
    """Student id -> notebook. ``alice.ipynb`` is ``alice``; ``alice/anything.ipynb`` is ``alice``.

    An id keeps letters, digits and ``_.@+-`` only. When names clean to the same id (``a b``
    and ``a_b``), each name that needed cleaning gets a suffix from the hash of its name: no
    submission is lost, and every id is the same on every run (a rerun resumes)."""
    folder = Path(folder)
    named: dict[str, Path] = {}
    for path in sorted(folder.rglob("*.ipynb")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue  # .ipynb_checkpoints and hidden folders
        student = relative.stem if len(relative.parts) == 1 else relative.parts[0]
        if student in named:
            student = str(relative.with_suffix("")).replace(os.sep, "__")
        named[student] = path
    clean = {name: re.sub(r"[^\w.@+-]", "_", name) for name in named}
    taken = collections.Counter(clean.values())
    found = {}
    for name, path in named.items():
        student = clean[name]
        if taken[student] > 1 and student != name:
            student += "-" + hashlib.sha256(name.encode()).hexdigest()[:8]
        found[student] = path
    return found


def read_submission(path: Path) -> bytes:
    """A submitted file's bytes, if it is a regular file of at most :data:`MAX_NOTEBOOK_BYTES`;
    else :class:`NotebookUnreadable`. Reading a FIFO would block the whole batch, and a sparse
    3 GB file costs nothing to store and 3 GB to read, so the file is opened without blocking,
    checked, and read no further than the cap."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        raise NotebookUnreadable(f"the file cannot be opened ({error.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotebookUnreadable("the submission is not a regular file (a folder, a pipe or a device?)")
        if info.st_size > MAX_NOTEBOOK_BYTES:
            raise NotebookUnreadable(too_large(info.st_size))
        with open(fd, "rb", closefd=False) as f:
            return f.read(MAX_NOTEBOOK_BYTES + 1)  # a file that grew since is refused by the parser
    finally:
        os.close(fd)
