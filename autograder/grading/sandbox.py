"""The trusted side of the sandbox: start the child, talk to it, stand in for the learner's code.

:class:`Sandbox` runs one submission's program in a child process (see
:mod:`autograder.grading.child`) and restarts it when it dies. :class:`ExerciseSession` is one
exercise's view of it, with its time budget; :class:`RemoteFunction` is what the checks receive
as ``impl``: calling it sends the arguments (JSON + safetensors) to the child, which calls the
learner's function and sends back the result, rebuilt here as fresh plain tensors and numbers.
Objects that cannot be sent (an instance of the learner's class, a bound method) stay in the
child and come back as :class:`RemoteObject` handles: their attributes and methods are remote
calls, and they never decide a comparison (``__eq__`` is identity, no ``__float__``).

Nothing crosses back into the grader's own state: the learner's code works on copies of its
inputs (a change in place fails the call), the grader's model is never changed (a call that
leaves the sandbox's weights changed fails), and the sandbox's random state stays there.
"""
from __future__ import annotations

import functools
import inspect
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from autograder.core import CHECK_MODEL_VARIABLE, LearnerError, check_model, check_model_name, modified_in_place
from autograder.grading import budget, wire

ROOT = Path(__file__).resolve().parents[2]
NOBODY = (65534, 65534)
GRACE_S = 3.0


@dataclass
class Limits:
    """Resource limits for one submission (CPU seconds, with wall-clock backstops; MiB)."""

    call_s: float = 20.0  # one call of the learner's code
    exercise_s: float = 60.0  # all calls of one exercise together
    submission_s: float = 300.0  # the whole submission: executing the notebook and every call
    load_s: float = 90.0  # executing the notebook's statements
    statement_s: float = 15.0  # one top-level statement of the notebook
    memory_mb: int = 3072  # address space beyond what the interpreter and torch take
    fsize_mb: int = 32
    nproc: int = 256
    max_output_mb: int = 256
    tmp_mb: int = 256


@functools.lru_cache(maxsize=1)
def namespaces_available() -> bool:
    """Whether ``unshare`` can give the child its own network, mounts and process ids."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    try:
        done = subprocess.run(["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc",
                               "--propagation", "private", "true"], capture_output=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def child_env() -> dict:
    """The whole environment of a sandbox child (and of the zygote it is forked from)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
           "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    if os.environ.get(CHECK_MODEL_VARIABLE):
        env[CHECK_MODEL_VARIABLE] = os.environ[CHECK_MODEL_VARIABLE]
    return env


class ZygoteError(Exception):
    pass


class _ZygoteChild:
    """The part of :class:`subprocess.Popen` the sandbox uses, for a child forked by the zygote."""

    def __init__(self, zygote: "Zygote", pid: int):
        self.zygote, self.pid, self.returncode = zygote, pid, None

    def poll(self):
        if self.returncode is None:
            self.zygote.pump(0)
            self.returncode = self.zygote.exits.pop(self.pid, None)
            if self.returncode is None and not self.zygote.alive:
                self.returncode = -signal.SIGKILL  # the zygote is gone, and its children with it
        return self.returncode

    def wait(self, timeout: float | None = None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            left = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
            if left <= 0:
                raise subprocess.TimeoutExpired("sandbox", timeout)
            if not self.zygote.pump(left) and not self.zygote.alive:
                self.returncode = -signal.SIGKILL  # the zygote is gone, and its children with it
        return self.returncode


class Zygote:
    """Client of :mod:`autograder.grading.zygote`: one per grading process, started on first use."""

    def __init__(self, preimport: list[str], preload_model: bool, model_name: str | None, timeout: float = 180.0):
        import json
        import socket

        self.key = (preload_model, model_name)
        self.exits: dict[int, int] = {}
        self.spawned: list[int] = []
        self.ready = False
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen([sys.executable, "-s", "-m", "autograder.grading.zygote", str(theirs.fileno())],
                                         pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         start_new_session=True, cwd="/", env=child_env())
        finally:
            theirs.close()
        self.sock = ours
        self.sock.send(json.dumps({"preimport": list(preimport), "preload_model": preload_model,
                                   "model_name": model_name}).encode())
        self.deadline = time.monotonic() + timeout

    def wait_ready(self) -> None:
        while not self.ready:
            if time.monotonic() > self.deadline or not self.alive:
                self.close()
                raise ZygoteError("the zygote did not start")
            try:
                self.pump(0.5)
            except ZygoteError:
                self.close()
                raise

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def pump(self, timeout: float) -> bool:
        """Read what the zygote said (within ``timeout``); False if nothing came."""
        import json
        import select

        got = False
        while True:
            ready, _, _ = select.select([self.sock], [], [], timeout if not got else 0)
            if not ready:
                return got
            try:
                data = self.sock.recv(1 << 16)
            except OSError:
                data = b""
            if not data:
                return got
            got = True
            message = json.loads(data)
            kind = message.get("t")
            if kind == "ready":
                self.ready = True
            elif kind == "spawned":
                self.spawned.append(int(message["pid"]))
            elif kind == "exit":
                self.exits[int(message["pid"])] = int(message["code"])
            elif kind == "error":
                raise ZygoteError(message.get("message"))

    def spawn(self, fds: list[int], namespaces: bool) -> _ZygoteChild:
        import json
        import socket

        if not self.alive:
            raise ZygoteError("the zygote is gone")
        try:
            socket.send_fds(self.sock, [json.dumps({"namespaces": bool(namespaces)}).encode()], fds)
        except OSError as error:
            raise ZygoteError(str(error)) from None
        deadline = time.monotonic() + 30
        while not self.spawned:
            if time.monotonic() > deadline or not self.alive:
                raise ZygoteError("the zygote did not fork")
            self.pump(0.5)
        return _ZygoteChild(self, self.spawned.pop(0))

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_ZYGOTE: list = []


def _zygote(preimport: list[str], preload_model: bool, wait: bool = True) -> Zygote | None:
    """This process's zygote for the current check model (started on first use), or None.
    ``wait=False`` starts it without waiting (the grader can do its own start-up meanwhile)."""
    model_name = check_model_name()
    if _ZYGOTE and (_ZYGOTE[0].key != (preload_model, model_name) or not _ZYGOTE[0].alive):
        _close_zygote()
    if not _ZYGOTE:
        try:
            _ZYGOTE.append(Zygote(preimport, preload_model, model_name))
        except (ZygoteError, OSError):
            return None
        import atexit

        atexit.register(_close_zygote)
    if wait:
        try:
            _ZYGOTE[0].wait_ready()
        except ZygoteError:
            _close_zygote()
            return None
    return _ZYGOTE[0]


def prestart_zygote(preimport: list[str], preload_model: bool) -> None:
    """Start this process's zygote now, without waiting for it."""
    _zygote(preimport, preload_model, wait=False)


def _close_zygote() -> None:
    while _ZYGOTE:
        _ZYGOTE.pop().close()


class SandboxDied(Exception):
    """The child is gone (timeout, crash, exit) or never started; the message says which."""


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "did not stop"
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        return f"was killed by {name}" + (" (out of memory?)" if name in ("SIGKILL", "SIGSEGV", "SIGBUS") else "")
    return f"ended the process with exit code {code} (sys.exit or os._exit?)"


class Sandbox:
    """One submission's child process: started, restarted after a crash, stopped."""

    def __init__(self, program, exercises: list[str], cells: dict[int, str], limits: Limits, *, scratch: Path,
                 hide: list[str] = (), hide_files: list[str] = (), overlay: dict[str, str] | None = None,
                 preimport: list[str] = (), preload_model: bool = False, namespaces: bool | None = None,
                 deadline: float | None = None, use_zygote: bool = True):
        self.program, self.exercises, self.cells, self.limits = program, exercises, cells, limits
        self.scratch = Path(scratch)
        self.hide, self.hide_files, self.overlay = list(hide), list(hide_files), dict(overlay or {})
        self.preimport, self.preload_model = list(preimport), preload_model
        self.use_zygote = use_zygote and os.name == "posix" and hasattr(__import__("socket"), "send_fds")
        self.namespaces = namespaces_available() if namespaces is None else namespaces
        self.deadline = deadline or time.monotonic() + budget.wall_backstop(limits.submission_s)  # wall clock
        self.cpu_used = 0.0  # CPU seconds the sandbox spent on this submission, over restarts
        self.skip: dict[int, str] = {}  # statements that killed or hung the child, and why
        self.proc = None
        self.generation = 0
        self.loaded: dict | None = None
        self.starts = 0
        self.output_path = self.scratch / "output.txt"

    # ---------------------------------------------------------------------------- life cycle

    def _spawn(self) -> None:
        MIRROR.restore()  # a new child's model has no hooks; neither may the stand-ins here
        self.generation += 1
        self.starts += 1
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        workdir = self.scratch / f"work{self.generation}"
        workdir.mkdir(parents=True, exist_ok=True)
        zygote = _zygote(self.preimport, self.preload_model) if self.use_zygote else None
        with open(self.output_path, "ab") as output:
            self.proc = None
            if zygote is not None:
                try:
                    self.proc = zygote.spawn([to_child_r, from_child_w, output.fileno()], self.namespaces)
                except ZygoteError:
                    _close_zygote()
            if self.proc is None:
                command = [sys.executable, "-s", "-m", "autograder.grading.child", str(to_child_r), str(from_child_w)]
                if self.namespaces:
                    command = ["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc",
                               "--propagation", "private", *command]
                self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output,
                                             stderr=subprocess.STDOUT, pass_fds=(to_child_r, from_child_w),
                                             start_new_session=True, cwd=str(workdir), env=child_env())
        os.close(to_child_r)
        os.close(from_child_w)
        self.fd_out, self.fd_in = to_child_w, from_child_r
        config = {
            "program": self.program, "cells": {str(k): v for k, v in self.cells.items()},
            "exercises": self.exercises, "skip": sorted(self.skip), "namespaces": self.namespaces,
            "workdir": str(workdir), "hide": self.hide, "hide_files": self.hide_files, "overlay": self.overlay,
            "preimport": self.preimport, "preload_model": self.preload_model,
            "model_name": check_model_name(),
            "drop_to": list(NOBODY) if os.geteuid() == 0 else None,
            "statement_timeout": self.limits.statement_s, "load_timeout": self.limits.load_s,
            "cpu_limit": self.limits.submission_s, "memory_mb": self.limits.memory_mb,
            "fsize_mb": self.limits.fsize_mb, "nproc": self.limits.nproc,
            "max_output_mb": self.limits.max_output_mb, "tmp_mb": self.limits.tmp_mb,
        }
        if self.namespaces:
            os.chmod(workdir, 0o755)
        elif os.geteuid() == 0:
            os.chown(workdir, *NOBODY)
        wire.send(self.fd_out, config, deadline=time.monotonic() + 30)

    def kill(self, grace: float = 0.0) -> int | None:
        """Stop the child (SIGKILL to its process group); its exit code. With ``grace``, a child
        whose end of the pipe closed gets that long to finish exiting on its own, so its own exit
        code (``os._exit(3)``) is reported rather than our SIGKILL."""
        if self.proc is None:
            return None
        if grace > 0:
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            code = None
        for fd in (self.fd_in, self.fd_out):
            try:
                os.close(fd)
            except OSError:
                pass
        self.proc = None
        return code

    def close(self) -> None:
        if self.proc is not None:
            try:
                wire.send(self.fd_out, {"op": "exit"}, deadline=time.monotonic() + 1)
                self.proc.wait(timeout=3)
            except Exception:  # noqa: BLE001 - it is being killed anyway
                pass
            self.kill()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> dict:
        """Start the child and run the program; statements that kill or hang it are skipped on
        a restart (at most four). Returns the child's description of the exercises."""
        while True:
            if self.starts >= 6:
                raise SandboxDied("your notebook could not be loaded: it crashed the grader repeatedly")
            load_deadline = min(time.monotonic() + budget.wall_backstop(self.limits.load_s), self.deadline)
            self._spawn()
            current, problem, hung = None, None, False
            try:
                while True:
                    header, _ = wire.recv(self.fd_in, load_deadline)
                    kind = header.get("t")
                    if kind == "stmt":
                        current = int(header["k"])
                    elif kind == "setup_failed":
                        self.kill()
                        raise SandboxDied(f"the grader's sandbox could not start: {header.get('type')}: "
                                          f"{header.get('message')}")
                    elif kind == "loaded":
                        self.cpu_used += budget.spent(header, 0.0, 0.0)
                        self.loaded = header
                        return header
            except wire.Deadline:
                problem, hung = "hung (it was stopped after the wall-clock backstop of its time limit)", True
            except (wire.ChildGone, wire.WireError) as error:
                problem = str(error) or "crashed"
            code = self.kill(grace=0.0 if hung else 1.0)
            problem = problem if hung else _describe_exit(code)
            if time.monotonic() >= self.deadline or self.cpu_used >= self.limits.submission_s:
                raise SandboxDied("your notebook took longer than the time allowed for a whole submission")
            if current is None or current in self.skip:
                raise SandboxDied(f"the grader's process {problem} before running your code")
            self.skip[current] = problem

    def ensure_started(self) -> None:
        if not self.alive:
            if self.proc is not None:
                self.kill()
            self.start()

    def request(self, header: dict, tensors: dict, timeout: float) -> tuple[dict, dict]:
        """Send one request limited to ``timeout`` CPU seconds; the answer within its wall-clock
        backstop (+ grace), else kill and raise."""
        deadline = time.monotonic() + budget.wall_backstop(timeout) + GRACE_S
        try:
            wire.send(self.fd_out, header, tensors, deadline=deadline)
            return wire.recv(self.fd_in, deadline, max_tensor_bytes=int(self.limits.max_output_mb * 2**20))
        except wire.Deadline:
            self.kill()
            raise SandboxDied(budget.stuck(timeout)) from None
        except wire.OutputTooLarge as error:
            self.kill()
            raise SandboxDied(f"sent back too much data ({error})") from None
        except (wire.ChildGone, wire.WireError, BrokenPipeError, OSError):
            code = self.kill(grace=1.0)
            raise SandboxDied(_describe_exit(code)) from None

    def reset_model(self) -> None:
        """After an exercise: no stand-in hooks here, and the child's model as it was loaded."""
        MIRROR.restore()
        if not self.alive:
            return
        try:
            reply, _ = self.request({"op": "reset_model"}, {}, 10.0)
        except SandboxDied:
            return  # restarted (pristine) on the next call
        if reply.get("t") != "ok":
            self.kill()

    def output_tail(self, limit: int = 4000) -> str:
        try:
            with open(self.output_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - limit))
                return f.read().decode("utf-8", errors="replace")
        except OSError:
            return ""


# ------------------------------------------------------------------------------ model mirror


def _remote_hook(tensor, hook):
    """Stands in, on the grader's model, for a hook the learner's code left on the sandbox's copy."""
    return None


_remote_hook.__qualname__ = _remote_hook.__name__ = "your hook (left on the model in the grading sandbox)"


class ModelMirror:
    """The learner's hooks, as seen on the grader's check model.

    A check such as "leaves no hooks on the model" looks at the model in this process, while the
    learner's code ran on the copy in the sandbox. After each call the child reports the hook
    points its copy has hooks on; here each such point gets a no-op stand-in hook
    (:func:`_remote_hook`, so ``model.hook_dict`` shows it, and ``model.reset_hooks()`` removes
    it). Before each call the child learns which stand-ins are still here and drops the hooks of
    the others. The stand-ins never change what the model computes, so references stay right.
    Weights are never copied: a call that leaves them changed fails (see
    :meth:`ExerciseSession.request`). :meth:`restore` (after every exercise, and when a new child
    starts) removes every stand-in.
    """

    def __init__(self):
        self.marked = False

    @staticmethod
    def _is_marker(handle) -> bool:
        return getattr(handle, "user_hook", None) is _remote_hook

    def keep(self) -> list[str]:
        """Names of the hook points that hold a stand-in hook now."""
        if not self.marked:
            return []
        model = check_model()
        names = [n for n, p in model.hook_dict.items() if any(self._is_marker(h) for h in p.fwd_hooks)]
        self.marked = bool(names)
        return names

    def sync(self, hooked: list[str]) -> None:
        """Stand-ins on exactly the hook points named in ``hooked``."""
        if not hooked and not self.marked:
            return
        points = check_model().hook_dict
        wanted = {id(points[n]) for n in hooked if n in points}
        done = set()
        for point in points.values():
            if id(point) in done:
                continue
            done.add(id(point))
            has = any(self._is_marker(h) for h in point.fwd_hooks)
            if id(point) in wanted and not has:
                point.add_hook(_remote_hook)
            elif has and id(point) not in wanted:
                self._unmark(point)
        self.marked = bool(wanted)

    @staticmethod
    def _unmark(point) -> None:
        keep = []
        for handle in point.fwd_hooks:
            if ModelMirror._is_marker(handle):
                handle.hook.remove()
            else:
                keep.append(handle)
        point.fwd_hooks = keep

    def restore(self) -> None:
        """No stand-in left on the grader's model."""
        self.sync([])


MIRROR = ModelMirror()


# ------------------------------------------------------------------------------------ proxies


def _is_cache(value) -> bool:
    module = sys.modules.get("transformer_lens")
    return module is not None and isinstance(value, getattr(module, "ActivationCache", ()))


class RemoteError(Exception):
    """An exception raised by the learner's code in the sandbox (re-created by type name)."""


@functools.lru_cache(maxsize=256)
def _error_class(name: str) -> type:
    if name == "NotImplementedError":
        return NotImplementedError
    return type(name[:100] or "Exception", (RemoteError,), {})


class ExerciseSession:
    """One exercise's calls into the sandbox, with its own time budget; after one call hangs or
    kills the child, the exercise's remaining calls fail at once with the same message."""

    def __init__(self, sandbox: Sandbox, name: str):
        self.sandbox, self.name = sandbox, name
        self.used = 0.0  # CPU seconds this exercise's calls used
        self.fatal: str | None = None

    def _encoder(self) -> wire.Encoder:
        encoder = wire.Encoder(prefix="a", max_bytes=int(self.sandbox.limits.max_output_mb * 2**20))

        def special(value):
            if isinstance(value, RemoteObject):
                session, handle, generation = object.__getattribute__(value, "_remote")
                if generation != self.sandbox.generation:
                    raise LearnerError(f"`{self.name}`: an object from before the sandbox restarted cannot be used")
                return {"H": handle}
            if _is_cache(value):
                inner = wire.Encoder(prefix=f"c{len(encoder.tensors)}_", max_bytes=encoder.max_bytes - encoder.nbytes)
                tree = inner.encode(dict(value.cache_dict))
                encoder.tensors.update(inner.tensors)
                encoder.nbytes += inner.nbytes
                return {"C": tree, "b": bool(value.has_batch_dim), "M": self._model_name(value.model)}
            import torch

            if isinstance(value, torch.nn.Module):
                return {"M": self._model_name(value)}
            return None

        encoder.special = special
        return encoder

    @staticmethod
    def _model_name(model):
        if model is not check_model():
            raise TypeError("only the model from autograder.core.check_model() can be sent to the sandbox")
        return check_model_name()

    def _decode_special(self, tree, tensors, depth):
        if "H" in tree:
            return RemoteObject._make(self, tree)
        if "C" in tree:
            from transformer_lens import ActivationCache

            return ActivationCache(wire.decode(tree["C"], tensors, self._decode_special, depth + 1), check_model(),
                                   has_batch_dim=bool(tree.get("b", True)))
        if "M" in tree:
            return check_model()
        raise wire.WireError("unknown value tag")

    def request(self, header: dict, args=(), kwargs=None, extra: dict | None = None):
        """Send an operation on the learner's code; return its decoded result."""
        if self.fatal:
            raise LearnerError(self.fatal)
        limits = self.sandbox.limits
        timeout = budget.call_limit(limits, self.used, self.sandbox.cpu_used)  # CPU seconds
        if timeout <= 0 or time.monotonic() >= self.sandbox.deadline:
            self.fatal = budget.used_up(self.name, limits)
            raise LearnerError(self.fatal)
        encoder = self._encoder()
        header = dict(header, args=encoder.encode(tuple(args)), kwargs=encoder.encode(dict(kwargs or {})),
                      timeout=timeout, guarded=list(encoder.originals), hooks_keep=MIRROR.keep())
        for key, value in (extra or {}).items():
            header[key] = encoder.encode(value)
        import torch

        # the grader's random state travels with the call, so `torch.manual_seed(k); impl(...)` in a
        # check means what it means in-process; the child's state never comes back, so whatever the
        # learner's code does to its generator cannot steer the inputs of later checks
        encoder.tensors["rng"] = torch.get_rng_state()
        started, reply = time.monotonic(), None
        try:
            self.sandbox.ensure_started()
            reply, tensors = self.sandbox.request(header, encoder.tensors, timeout)
        except SandboxDied as died:
            self.fatal = f"`{self.name}` {died}"
            raise LearnerError(self.fatal) from None
        finally:
            cpu = budget.spent(reply, time.monotonic() - started, timeout)
            self.used, self.sandbox.cpu_used = self.used + cpu, self.sandbox.cpu_used + cpu
        self._check_model_report(reply.get("model"))
        if reply.get("t") == "error":
            kind, message, where = str(reply.get("type")), str(reply.get("message"))[:600], str(reply.get("where", ""))
            if kind == "Timeout":
                self.fatal = budget.too_slow(self.name, timeout, message)
                raise LearnerError(self.fatal)
            if kind == "OutputTooLarge":
                raise LearnerError(f"`{self.name}` returned too much data: {message}")
            if kind in ("MemoryError", "OutOfMemoryError"):  # once is enough: the next call would too
                self.fatal = f"`{self.name}` ran out of memory (the limit is {limits.memory_mb} MB){where}"
                raise LearnerError(self.fatal)
            raise _error_class(kind)(message + where)
        if reply.get("mutated"):  # the child changed its copies; the check's own tensors are untouched
            raise modified_in_place(self.name)
        try:
            return wire.decode(reply.get("value"), tensors, self._decode_special)
        except (wire.WireError, KeyError, ValueError, TypeError, RuntimeError) as error:
            raise LearnerError(f"`{self.name}` returned something the grader cannot read: {error}") from None

    def _check_model_report(self, report) -> None:
        """Mirror the hooks the call left on the sandbox's model (see :class:`ModelMirror`), and
        fail the call if it left the model's weights changed: the child has put them back, and
        the grader's model, which references run on, is never changed."""
        report = report if isinstance(report, dict) else {}
        MIRROR.sync(_names(report.get("hooks")))
        changed = _names(report.get("changed"))
        if changed:
            raise LearnerError(f"`{self.name}` left the model's weights changed (e.g. {changed[0]}); ablate with a "
                               "hook, or restore the weights before returning")


def _names(value) -> list[str]:
    """The strings of a list the child sent (anything else is ignored)."""
    return [n for n in value if isinstance(n, str)] if isinstance(value, list) else []


class RemoteFunction:
    """``impl`` for the checks: the learner's function or class, living in the sandbox."""

    def __init__(self, session: ExerciseSession, info: dict):
        self._session = session
        self.__name__ = self.__qualname__ = session.name
        params = info.get("signature")
        if params is not None:
            self.__signature__ = inspect.Signature(
                [inspect.Parameter(p, inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in params])

    def __getattr__(self, name):
        if name == "__signature__":
            raise ValueError("the signature of the learner's code is unknown")
        raise AttributeError(name)

    def __call__(self, *args, **kwargs):
        return self._session.request({"op": "call", "name": self._session.name}, args, kwargs)

    def __repr__(self):
        return f"<your {self._session.name} (in the grading sandbox)>"


class RemoteObject:
    """A handle to an object that stays in the sandbox (an instance of the learner's class, a
    bound method, ...). Attribute reads, writes, calls, ``len``, indexing and iteration are
    remote; comparisons and truth are the grader's own (identity, always true)."""

    _classes: dict[str, type] = {}

    @classmethod
    def _make(cls, session: ExerciseSession, tree: dict) -> "RemoteObject":
        kind = str(tree.get("type", "object"))[:100] or "object"
        sub = cls._classes.get(kind)
        if sub is None:
            sub = cls._classes[kind] = type(kind, (RemoteObject,), {})
        obj = object.__new__(sub)
        object.__setattr__(obj, "_remote", (session, int(tree["H"]), session.sandbox.generation))
        object.__setattr__(obj, "__qualname__", str(tree.get("qualname", kind))[:200])
        object.__setattr__(obj, "_callable", bool(tree.get("callable")))
        return obj

    def _op(self, header: dict, args=(), kwargs=None, extra=None):
        session, handle, generation = object.__getattribute__(self, "_remote")
        if generation != session.sandbox.generation:
            raise LearnerError(f"`{session.name}`: this object was lost when the sandbox restarted")
        return session.request(dict(header, handle=handle), args, kwargs, extra)

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)  # never let probing (__torch_function__, __array__...) reach the child
        return self._op({"op": "getattr", "name": name})

    def __setattr__(self, name, value):
        self._op({"op": "setattr", "name": name}, extra={"value": value})

    def __call__(self, *args, **kwargs):
        return self._op({"op": "call"}, args, kwargs)

    def __len__(self):
        value = self._op({"op": "len"})
        return value if type(value) is int else 0

    def __getitem__(self, key):
        return self._op({"op": "getitem"}, extra={"key": key})

    def __iter__(self):
        value = self._op({"op": "iter"})
        return iter(value if isinstance(value, list) else [])

    def __repr__(self):
        return f"<your {type(self).__name__} object (in the grading sandbox)>"
