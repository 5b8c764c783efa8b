"""A fresh virtual environment for tests that install the course the way a learner does.

Packages come from pip's usual sources and caches (on the course's machines a local wheel folder
holds the CPU build of torch), never a multi-GB CUDA download. Installing the lock still takes
minutes: the first-cell test took 18 min on 2 cores shared with three other jobs (4 min of CPU).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def python_for_venv() -> str:
    """The interpreter ``./run`` would pick for a new venv (the base of the running one)."""
    for name in ("python3.11", "python3.12", "python3"):
        if found := shutil.which(name):
            return found
    return sys.executable


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any hint of the course's own venv, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    venv_bin = str(Path(sys.prefix) / "bin")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    return {**env, **extra}


def run(command: list[str] | str, cwd: Path, env: dict[str, str] | None = None,
        timeout: float = 900) -> subprocess.CompletedProcess:
    """Run a command (a list, or a bash line) and fail with its output if it fails."""
    done = subprocess.run(command, cwd=cwd, env=env or clean_env(), shell=isinstance(command, str),
                          executable="/bin/bash" if isinstance(command, str) else None,
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"{command!r} in {cwd} exited with {done.returncode}:\n"
                             f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def make_venv(path: Path) -> Path:
    """A new venv at ``path`` with nothing installed; returns its python."""
    run([python_for_venv(), "-m", "venv", str(path)], cwd=path.parent)
    return path / "bin" / "python"
