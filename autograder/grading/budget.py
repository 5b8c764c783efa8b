"""Time limits that count CPU seconds, so that a busy machine grades as a quiet one does.

A limit on wall-clock time punishes a submission for what else the machine is doing: the same
correct code that answers in 2 s on a quiet machine takes 20 s on one whose cores are shared.
So every limit (per statement, per call, per exercise, per submission) counts the CPU time the
sandbox used, and wall-clock time is only a backstop, :data:`WALL_FACTOR` times longer, for code
that waits instead of computing (``time.sleep``, a blocked read).

* In the child, :func:`time_limit` arms two interval timers: ``ITIMER_PROF`` (CPU time of the
  process, all threads) and ``ITIMER_REAL`` (the backstop); either raises :class:`Timeout` in
  the learner's code. The child measures each call's CPU seconds and reports them.
* In the parent, :func:`call_limit` gives a call what is left of its exercise's and its
  submission's budgets, and :func:`spent` reads back what the call used.

Learner code runs in the child and could disarm its timers; the kernel's ``RLIMIT_CPU`` (see
:func:`limit_process_cpu`) and the parent's wall-clock backstop still stop it.
"""
from __future__ import annotations

import contextlib
import math
import signal
import time

WALL_FACTOR = 10.0
# Taken before any learner code runs: a notebook that replaces ``time.process_time`` or
# ``signal.setitimer`` does not change what the grader measures or arms.
_process_time, _setitimer, _signal = time.process_time, signal.setitimer, signal.signal


class Timeout(BaseException):
    """Raised inside learner code that ran past its limit (a BaseException, so that a bare
    ``except Exception`` in the learner's code does not swallow it)."""


def _on_cpu_timer(signum, frame):
    raise Timeout("used up its CPU time")


def _on_wall_timer(signum, frame):
    raise Timeout(f"was stopped after {WALL_FACTOR:g} times its time limit in wall-clock time "
                  "(is it waiting for something?)")


def cpu_seconds() -> float:
    """CPU seconds (user and system, all threads) this process has used so far."""
    return _process_time()


def wall_backstop(cpu_limit: float) -> float:
    """Wall-clock seconds after which code with ``cpu_limit`` CPU seconds is stopped anyway."""
    return cpu_limit * WALL_FACTOR


@contextlib.contextmanager
def time_limit(cpu_limit: float):
    """Raise :class:`Timeout` in the block after ``cpu_limit`` CPU seconds, or after its wall-clock backstop."""
    seconds = max(float(cpu_limit), 0.01)
    _signal(signal.SIGPROF, _on_cpu_timer)
    _signal(signal.SIGALRM, _on_wall_timer)
    _setitimer(signal.ITIMER_PROF, seconds)
    _setitimer(signal.ITIMER_REAL, wall_backstop(seconds))
    try:
        yield
    finally:
        _setitimer(signal.ITIMER_PROF, 0)
        _setitimer(signal.ITIMER_REAL, 0)


def limit_process_cpu(cpu_limit: float) -> None:
    """Let the kernel kill this process once it has used ``cpu_limit`` more CPU seconds
    (``SIGXCPU``, then ``SIGKILL`` five seconds later): a guard that learner code cannot lift."""
    import resource

    soft = math.ceil(cpu_seconds() + cpu_limit)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 5))


def call_limit(limits, exercise_used: float, submission_used: float) -> float:
    """CPU seconds the next call may use: its own limit, or what is left of its exercise's or
    its submission's budget if that is less (zero or less: nothing is left)."""
    return min(limits.call_s, limits.exercise_s - exercise_used, limits.submission_s - submission_used)


def spent(reply, wall: float, limit: float) -> float:
    """CPU seconds a call used, as the child measured them; when the child could not say (it
    died or was stopped), the wall-clock time it took, at most its limit."""
    try:
        cpu = float(reply["cpu"])
    except (TypeError, KeyError, ValueError):
        return min(wall, limit)
    return cpu if math.isfinite(cpu) and cpu >= 0 else min(wall, limit)


def used_up(name: str, limits) -> str:
    return (f"`{name}` used up its time limit ({limits.exercise_s:g} CPU seconds per exercise, "
            f"{limits.submission_s:g} per submission); is it very slow or stuck?")


def stuck(limit: float) -> str:
    """Why a call was stopped by its wall-clock backstop (the child did not answer at all)."""
    return (f"did not finish within {wall_backstop(limit):.0f} s of wall-clock time, the backstop for its time "
            f"limit of {limit:.3g} CPU seconds (is it waiting for something?)")


def too_slow(name: str, limit: float, why: str) -> str:
    """The message for a call that the child's timers stopped; ``why`` is the :class:`Timeout`'s."""
    return f"`{name}` did not finish within its time limit of {limit:.3g} CPU seconds: it {why}"
