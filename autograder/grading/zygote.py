"""A fork server for sandboxes: start-up (importing torch and TransformerLens, loading the check
model) is paid once per grading process instead of once per submission and restart.

The zygote is a clean interpreter started like a sandbox child (same environment, ``-s``, no
solutions, no checks, no learner code ever run in it). It imports what the notebooks import and
loads the check model, then waits on a ``SOCK_SEQPACKET`` socket. For each request (a JSON
line and three file descriptors: the child's two pipe ends and its output file) it forks:

* the fork (pid P, in the grader's pid namespace, so the grader can ``killpg`` it) starts a new
  session, ``unshare``\\ s network, mount and pid namespaces, makes mounts private and forks
  again; then it only waits and exits as its child did (exit code, or the same signal), like
  ``unshare --fork --kill-child``;
* its child is pid 1 of the new pid namespace (it dies with P: ``PR_SET_PDEATHSIG``), mounts a
  fresh ``/proc`` and runs :func:`autograder.grading.child.main`, which does everything a
  freshly started child does (hide paths, private ``/tmp``, limits, ``nobody``, audit hook).

The zygote reports ``{"t": "spawned", "pid": P}`` and, when P ends, ``{"t": "exit", "pid": P,
"code": c}`` (negative for a signal, as :class:`subprocess.Popen` does). It exits when the
grader closes the socket.
"""
from __future__ import annotations

import ctypes
import importlib
import json
import os
import select
import signal
import socket
import sys

CLONE_NEWNS, CLONE_NEWNET, CLONE_NEWPID = 0x00020000, 0x40000000, 0x20000000
MS_REC, MS_PRIVATE, MS_NOSUID, MS_NODEV, MS_NOEXEC = 16384, 1 << 18, 2, 4, 8
PR_SET_PDEATHSIG = 1
# Only third-party packages are imported here: the course's own modules are imported by each
# child after its mounts, so that it sees the public checks only.
COURSE_PACKAGES = {"autograder", "utils", "solutions", "tests", "course", "chapters", "scripts"}


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def _exit_like(status: int) -> None:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


def _run_child(fds: list[int], namespaces: bool) -> None:
    """In the fork: become the sandbox (never returns)."""
    try:
        to_child_r, from_child_w, output = fds
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(output, 1)
        os.dup2(output, 2)
        keep = {0, 1, 2, to_child_r, from_child_w}
        for fd in range(3, 1024):
            if fd not in keep:
                try:
                    os.close(fd)
                except OSError:
                    pass
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        libc = _libc()
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # dies with the zygote, and its child with it
        if namespaces:
            _check(libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID), "unshare")
            _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
            pid = os.fork()
            if pid:
                os.close(to_child_r)
                os.close(from_child_w)
                while True:
                    try:
                        _, status = os.waitpid(pid, 0)
                        break
                    except InterruptedError:
                        continue
                _exit_like(status)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            _check(libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None), "mount /proc")
        from autograder.grading import child

        child.main([str(to_child_r), str(from_child_w)])
        sys.stdout.flush()
        os._exit(0)
    except BaseException:  # noqa: BLE001
        import traceback

        try:
            traceback.print_exc()
            sys.stderr.flush()
        finally:
            os._exit(70)


def serve(sock: socket.socket) -> None:
    config = json.loads(sock.recv(1 << 16) or b"{}")
    import torch

    torch.set_num_threads(1)
    for name in config.get("preimport", []):
        if name.split(".")[0] in COURSE_PACKAGES:
            continue  # imported by each child after it has hidden what it must not see (hidden checks)
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the child's own import reports it
            pass
    importlib.import_module("encodings.idna")
    from autograder.grading import child

    importlib.import_module("autograder.core")
    if config.get("preload_model"):
        try:
            child._model(config.get("model_name"))
        except Exception:  # noqa: BLE001 - each child then tries, and reports why it fails
            pass
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("solutions", "tests")
                    or m.startswith("autograder.ch") or m == "autograder.record")
    if leaked:  # a chapter's checks in memory before the child hides them: do not serve
        sock.send(json.dumps({"t": "error", "message": f"zygote imported {leaked[:3]}"}).encode())
        return
    sock.send(json.dumps({"t": "ready"}).encode())
    children: set[int] = set()
    while True:
        ready, _, _ = select.select([sock], [], [], 0.05 if children else 1.0)
        for pid in list(children):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, status = pid, 0
            if done:
                children.discard(pid)
                code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
                sock.send(json.dumps({"t": "exit", "pid": pid, "code": code}).encode())
        if not ready:
            continue
        try:
            message, fds, _, _ = socket.recv_fds(sock, 1 << 16, 3)
        except OSError:
            break
        if not message:
            break
        request = json.loads(message)
        if len(fds) != 3:
            for fd in fds:
                os.close(fd)
            sock.send(json.dumps({"t": "error", "message": "expected three file descriptors"}).encode())
            continue
        pid = os.fork()
        if pid == 0:
            sock.close()
            _run_child(fds, bool(request.get("namespaces")))
        for fd in fds:
            os.close(fd)
        children.add(pid)
        sock.send(json.dumps({"t": "spawned", "pid": pid}).encode())
    for pid in children:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass


def main(argv: list[str]) -> None:
    _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # never outlive the grader
    sock = socket.socket(fileno=int(argv[0]))
    try:
        serve(sock)
    finally:
        os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
