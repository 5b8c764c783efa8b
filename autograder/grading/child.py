"""The sandbox: a fresh interpreter that runs one submission's code and answers calls.

Started by :class:`autograder.grading.sandbox.Sandbox` as ``python -I -m
autograder.grading.child FD_IN FD_OUT``, under ``unshare --net --mount --pid`` where the OS
allows it. It reads its configuration from the parent, then, before running any learner code:

1. hides what the learner must not see (mount namespace, as root): ``solutions/``, ``tests/``,
   ``.git``, the submissions and output folders become empty; the chapter check modules are
   replaced by copies without hidden checks; ``/tmp`` is a private tmpfs and the working folder
   ``/tmp/work`` lives in it;
2. imports what the notebook imports from a list of known packages (and the check model if the
   chapter's checks use one), so that start-up is paid once, with nothing learner-controlled;
3. limits memory (RLIMIT_AS), file size (RLIMIT_FSIZE), core dumps and, after dropping to the
   ``nobody`` user (as root), the number of processes (RLIMIT_NPROC);
4. installs an audit hook (which cannot be removed) that blocks processes, signals to others,
   sockets, ctypes, ``gc`` introspection, importing ``solutions``/``tests``, reading hidden paths
   and writing outside the working folder: the same rules without root, as a second layer with it.

Then it executes the program's statements in order (each under a CPU-time limit, see
:mod:`autograder.grading.budget`; a failing one is recorded and skipped), reports which
exercises exist, and serves ``call``/``getattr``/... requests until told to stop. Values cross as JSON + safetensors (:mod:`autograder.grading.wire`).
"""
from __future__ import annotations

import builtins
import importlib
import inspect
import linecache
import os
import signal
import sys
import time
import traceback

from autograder.grading import wire
from autograder.grading.budget import Timeout as _Timeout
from autograder.grading.budget import cpu_seconds, limit_process_cpu, time_limit

HANDLES: dict[int, object] = {}
STATE: dict = {"model": None, "model_name": None, "model_loaded": False}


# ------------------------------------------------------------------------------------ sandbox


def _mounts(cfg: dict) -> str:
    """Hide paths and give the child a private /tmp (inside ``unshare --mount``, as root)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    MS_NOSUID, MS_NODEV, MS_BIND, MS_REC = 2, 4, 4096, 16384

    def mount(source, target, fstype, flags, data=None):
        if libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None, flags,
                      data.encode() if data else None) != 0:
            raise OSError(ctypes.get_errno(), f"mount {target}: {os.strerror(ctypes.get_errno())}")

    # The interpreter may live where `nobody` cannot go (a pyenv under /root, mode 700): give
    # the closed ancestor a private tmpfs holding just the needed folders, bind-mounted back.
    stage = os.path.join(cfg["workdir"], "stage")
    for ancestor, children in _closed_ancestors(_needed_paths()).items():
        staged = []
        for i, child in enumerate(sorted(children)):
            holder = os.path.join(stage, str(len(staged)) + "_" + str(i))
            os.makedirs(holder, exist_ok=True)
            mount(child, holder, None, MS_BIND | MS_REC)
            staged.append((child, holder))
        mount("tmpfs", ancestor, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=755")
        for child, holder in staged:
            os.makedirs(child, exist_ok=True)
            mount(holder, child, None, MS_BIND | MS_REC)
    for target, source in cfg.get("overlay", {}).items():
        mount(source, target, None, MS_BIND)
    for path in cfg.get("hide", []):
        if os.path.isdir(path):
            mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=755")
        elif os.path.isfile(path):
            mount("/dev/null", path, None, MS_BIND)
    # The course or its environment may itself live under /tmp (a CI checkout, say): hold those
    # folders open, cover /tmp with a private tmpfs, then bind them back (with the hiding mounts
    # made above inside them, as MS_REC carries submounts along).
    held = [(path, os.open(path, os.O_RDONLY | os.O_DIRECTORY)) for path in _under_tmp(_needed_paths())]
    mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={int(cfg['tmp_mb'])}m,mode=1777")
    for path, fd in held:
        os.makedirs(path, exist_ok=True)
        mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
        os.close(fd)
    if os.path.isdir("/dev/shm"):
        mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=1777")
    workdir = "/tmp/work"
    os.makedirs(workdir, exist_ok=True)
    return workdir


def _needed_paths() -> list[str]:
    """Folders the child must be able to read after dropping to `nobody`."""
    import sysconfig

    paths = {sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable)),
             sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"],
             os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))}
    return sorted(os.path.realpath(p) for p in paths if p)


def _under_tmp(paths: list[str]) -> list[str]:
    """The outermost of ``paths`` that lie inside /tmp (which the sandbox replaces)."""
    inside = sorted(p for p in paths if p.startswith("/tmp/"))
    return [p for i, p in enumerate(inside) if not any(p.startswith(q + "/") for q in inside[:i])]


def _closed_ancestors(paths: list[str]) -> dict[str, set[str]]:
    """{ancestor that others cannot enter: {its child folders on the way to a needed path}}."""
    closed: dict[str, set[str]] = {}
    for path in paths:
        parts = path.strip(os.sep).split(os.sep)
        for depth in range(len(parts) - 1):
            ancestor = os.sep + os.sep.join(parts[:depth]) if depth else os.sep
            ancestor = os.path.normpath(ancestor)
            if ancestor != os.sep and not os.stat(ancestor).st_mode & 0o001:
                closed.setdefault(ancestor, set()).add(os.path.join(ancestor, parts[depth]))
                break
    return closed


def _vm_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _install_audit_hook(workdir: str, hidden: list[str], private_tmp: bool = False) -> None:
    """Block what grading code never needs. Built in a function so nothing else holds the hook."""
    blocked = frozenset({
        "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.exec", "os.system", "subprocess.Popen",
        "os.kill", "os.killpg", "signal.pthread_kill", "socket.__new__", "socket.connect", "socket.bind",
        "socket.getaddrinfo", "socket.gethostbyname", "socket.sendto", "socket.sendmsg", "ctypes.dlopen",
        "ctypes.dlsym", "ctypes.call_function", "gc.get_objects", "gc.get_referrers", "gc.get_referents",
        "webbrowser.open", "urllib.Request", "os.chroot", "os.setxattr", "os.removexattr",
    })
    path_events = {"os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.chmod": (0,), "os.chown": (0,),
                   "os.rename": (0, 1), "os.link": (1,), "os.symlink": (1,), "os.truncate": (0,),
                   "os.utime": (0,), "shutil.rmtree": (0,), "shutil.copyfile": (1,), "shutil.copytree": (1,),
                   "shutil.move": (0, 1), "shutil.chown": (0,), "os.chflags": (0,)}
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    root = os.path.realpath("/tmp" if private_tmp else workdir) + os.sep  # a private /tmp is ours to write
    hidden_roots = tuple(os.path.realpath(h) for h in hidden)
    realpath, fspath, join, getcwd = os.path.realpath, os.fspath, os.path.join, os.getcwd

    def resolve(path):
        if isinstance(path, int):
            return None
        path = fspath(path)
        if isinstance(path, bytes):
            path = path.decode(errors="replace")
        return realpath(join(getcwd(), path))

    def inside(path, roots):
        return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)

    def hook(event, args):
        if event in blocked:
            raise PermissionError(f"{event} is not allowed while grading")
        if event == "import":
            name = args[0] if args else ""
            if isinstance(name, str) and name.split(".")[0] in ("solutions", "tests"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        elif event == "open":
            path = resolve(args[0])
            if path is None:
                return
            mode, flags = args[1], args[2] if len(args) > 2 else 0
            writing = any(c in mode for c in "wax+") if isinstance(mode, str) else bool((flags or 0) & write_flags)
            if inside(path, hidden_roots):
                raise PermissionError(f"reading {path} is not allowed while grading")
            if writing and not (path.startswith(root) or path == "/dev/null"):
                raise PermissionError(f"writing {path} is not allowed while grading: write inside your working folder")
        elif event in path_events:
            for i in path_events[event]:
                if i < len(args):
                    path = resolve(args[i])
                    if path is not None and not path.startswith(root):
                        raise PermissionError(f"{event} on {path} is not allowed while grading")

    sys.addaudithook(hook)


def setup(cfg: dict) -> str:
    if cfg.get("namespaces"):
        workdir = _mounts(cfg)
    else:
        workdir = cfg["workdir"]
    drop = cfg.get("drop_to") if os.geteuid() == 0 else None
    if drop and not cfg.get("namespaces") and _closed_ancestors(_needed_paths()):
        drop = None  # `nobody` could not read the interpreter; the audit hook still applies
    if drop:
        os.chown(workdir, drop[0], drop[1])
    os.chdir(workdir)
    for var in ("HOME", "TMPDIR", "MPLCONFIGDIR", "XDG_CACHE_HOME"):
        os.environ[var] = workdir
    os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HOME=os.path.join(workdir, ".hf"))
    import tempfile

    tempfile.tempdir = workdir

    import torch

    torch.set_num_threads(1)
    import encodings.idna  # noqa: F401 - so that a blocked socket call says so, not "unknown encoding"
    for name in cfg.get("preimport", []):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the learner's import will fail and say why
            pass
    if cfg.get("preload_model"):
        _model(cfg.get("model_name"))

    import autograder
    import autograder.core

    def check(*args, **kwargs):
        """Grading runs the checks itself; ``check`` in a submission does nothing."""

    autograder.check = autograder.core.check = check
    snapshot_libraries()

    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (cfg["fsize_mb"] * 2**20,) * 2)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write fails instead of killing us
    resource.setrlimit(resource.RLIMIT_AS, (_vm_bytes() + cfg["memory_mb"] * 2**20,) * 2)
    limit_process_cpu(cfg["cpu_limit"])
    if drop:
        resource.setrlimit(resource.RLIMIT_NPROC, (cfg["nproc"],) * 2)
        try:
            import ctypes

            ctypes.CDLL(None).prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
        except Exception:  # noqa: BLE001
            pass
        os.setgroups([])
        os.setgid(drop[1])
        os.setuid(drop[0])
    for name in list(sys.modules):
        if name.split(".")[0] in ("solutions", "tests"):
            del sys.modules[name]
    _install_audit_hook(workdir, cfg.get("hide", []) + cfg.get("hide_files", []), bool(cfg.get("namespaces")))
    return workdir


# ------------------------------------------------------------------------------------- values


def _model(name):
    if not STATE["model_loaded"]:
        from utils.models import cached_model

        model = cached_model(name)
        STATE["model"] = model
        STATE["model_name"], STATE["model_loaded"] = name, True
        _snapshot(model)
    return STATE["model"]


# The sandbox's copy of the check model is shared by every exercise, as in the notebook. The hooks
# the learner's code leaves on it are reported to the grader after each call, so that checks like
# "leaves no hooks" see them on the grader's copy (as stand-in hooks); the grader says which
# stand-in hooks it still holds before each call (the others were reset there, so they are removed
# here too) and resets both copies after each exercise. Changed weights are reported by name only,
# and put back at once: the grader fails that call and never copies them.
_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def _model_tensors(model) -> dict:
    tensors = dict(model.named_parameters())
    tensors.update(model.named_buffers())
    return tensors


def _snapshot(model) -> None:
    import torch

    STATE["equal"] = torch.equal  # the learner may monkeypatch torch later
    STATE["pristine"] = {k: torch.Tensor.clone(torch.Tensor.detach(v)) for k, v in _model_tensors(model).items()}
    STATE["modules"] = list(model.modules())
    STATE["torch_hooks"] = {id(m): {a: set(getattr(m, a, {}) or {}) for a in _HOOK_DICTS} for m in STATE["modules"]}
    points, seen = [], {}
    for name, point in model.hook_dict.items():
        points.append((name, point))
        seen.setdefault(id(point), point)
    STATE["points"], STATE["unique_points"] = points, list(seen.values())


def _new_torch_hooks(module) -> list:
    snap = STATE["torch_hooks"].get(id(module), {})
    found = []
    for attr in _HOOK_DICTS:
        table = getattr(module, attr, None)
        if isinstance(table, dict):
            found += [(attr, key) for key in list(table) if key not in snap.get(attr, ())]
    return found


def _has_hooks(point) -> bool:
    try:
        return bool(point.fwd_hooks) or bool(point.bwd_hooks) or bool(_new_torch_hooks(point))
    except Exception:  # noqa: BLE001 - the learner replaced something; treat it as hooked
        return True


def _clear_hooks(module) -> None:
    for attr in ("fwd_hooks", "bwd_hooks"):
        handles = getattr(module, attr, None)
        if handles:
            for handle in list(handles) if isinstance(handles, list) else []:
                try:
                    handle.hook.remove()
                except Exception:  # noqa: BLE001
                    pass
            try:
                setattr(module, attr, [])
            except Exception:  # noqa: BLE001
                pass
    for attr, key in _new_torch_hooks(module):
        getattr(module, attr).pop(key, None)


def _sync_hooks(keep) -> None:
    """Remove the learner's hooks from every hook point the grader no longer holds."""
    if not STATE["model_loaded"] or "points" not in STATE:
        return
    keep = set(keep or ())
    kept = {id(point) for name, point in STATE["points"] if name in keep}
    for point in STATE["unique_points"]:
        if id(point) not in kept and _has_hooks(point):
            _clear_hooks(point)


# Libraries whose attributes an exercise's code may monkeypatch (``torch.Tensor.__eq__ = ...``):
# put back after each exercise, so that one exercise's patch cannot break the others.
_PATCHABLE = (("builtins", None), ("torch", None), ("torch", "Tensor"), ("torch.nn", None),
              ("torch.nn.functional", None), ("torch.nn", "Module"), ("torch.linalg", None), ("numpy", None),
              ("einops", None), ("math", None), ("transformer_lens", None), ("transformer_lens", "ActivationCache"),
              ("transformer_lens.model_bridge", "TransformerBridge"), ("autograder", None), ("autograder.core", None))
_SETATTR, _DELATTR, _VARS = setattr, delattr, vars


def _patchable_objects() -> list:
    found = []
    for module_name, attr in _PATCHABLE:
        module = sys.modules.get(module_name)
        target = getattr(module, attr, None) if attr else module
        if target is not None:
            found.append(target)
    return found


def snapshot_libraries() -> None:
    STATE["libraries"] = [(target, dict(_VARS(target))) for target in _patchable_objects()]


def restore_libraries() -> None:
    for target, saved in STATE.get("libraries", []):
        current = _VARS(target)
        if isinstance(target, type):  # `torch.Tensor.__eq__ = ...` adds to Tensor what its base defines
            for name in [n for n in list(current) if n not in saved]:
                try:
                    _DELATTR(target, name)
                except (AttributeError, TypeError):
                    pass
        # names added to a module stay: usually a submodule imported since (lazily)
        for name, value in saved.items():
            if current.get(name, _MISSING) is not value:
                try:
                    _SETATTR(target, name, value)
                except (AttributeError, TypeError):
                    pass


_MISSING = object()


def _reset_model() -> None:
    """After an exercise: libraries as they were before the notebook ran, and the model as it was
    loaded (no hooks, original weights)."""
    restore_libraries()
    if not STATE["model_loaded"] or "pristine" not in STATE:
        return
    for module in STATE["modules"]:
        _clear_hooks(module)
    _restore_weights()


def _restore_weights() -> None:
    """The model's weights and buffers as they were loaded."""
    import torch

    current = _model_tensors(STATE["model"])
    with torch.no_grad():
        for name, original in STATE["pristine"].items():
            tensor = current.get(name)
            if tensor is None:
                continue
            if tensor.shape == original.shape and tensor.dtype == original.dtype:
                if not STATE["equal"](tensor.detach(), original):
                    tensor.copy_(original)
            else:
                tensor.data = original.clone()


def _model_report() -> dict | None:
    """Hook points with the learner's hooks, and the names of weights that differ from the loaded
    ones (which are then put back)."""
    if not STATE["model_loaded"] or "points" not in STATE:
        return None
    hooked = [name for name, point in STATE["points"] if _has_hooks(point)]
    changed = []
    equal = STATE["equal"]
    for name, tensor in _model_tensors(STATE["model"]).items():
        original = STATE["pristine"].get(name)
        if original is None:
            continue
        if tensor.shape != original.shape or tensor.dtype != original.dtype or not equal(tensor.detach(), original):
            changed.append(name)
    if changed:
        _restore_weights()
    return {"hooks": hooked, "changed": changed}


def _is_cache(value) -> bool:
    module = sys.modules.get("transformer_lens")
    return module is not None and isinstance(value, getattr(module, "ActivationCache", ()))


def _encoder(max_bytes: int) -> wire.Encoder:
    encoder = wire.Encoder(prefix="r", max_bytes=max_bytes)

    def special(value):
        if STATE["model_loaded"] and value is STATE["model"]:
            return {"M": STATE["model_name"]}
        if _is_cache(value):
            inner = {k: v for k, v in value.cache_dict.items()}
            return {"C": encoder.encode(inner), "b": bool(value.has_batch_dim),
                    "M": STATE["model_name"] if STATE["model_loaded"] and value.model is STATE["model"] else None}
        return None

    def fallback(value):
        handle = len(HANDLES) + 1
        HANDLES[handle] = value
        qualname = getattr(value, "__qualname__", None)
        kind = type(value).__name__
        return {"H": handle, "type": kind if isinstance(kind, str) else "object",
                "qualname": qualname if isinstance(qualname, str) else kind, "callable": callable(value)}

    encoder.special, encoder.fallback = special, fallback
    return encoder


def _decode_special(tree, tensors, depth):
    if "M" in tree and "C" not in tree:
        return _model(tree["M"])
    if "C" in tree:
        from transformer_lens import ActivationCache

        return ActivationCache(wire.decode(tree["C"], tensors, _decode_special, depth + 1), _model(tree.get("M")),
                               has_batch_dim=bool(tree.get("b", True)))
    if "H" in tree:
        return HANDLES[int(tree["H"])]
    raise wire.WireError("unknown tag")


def _where(tb) -> str:
    found = ""
    for frame in traceback.extract_tb(tb):
        if frame.filename.startswith("<cell "):
            code = (frame.line or "").strip()
            found = f" ({frame.filename[1:-1]}, line {frame.lineno}" + (f": `{code[:120]}`)" if code else ")")
    return found


def _describe_error(error: BaseException) -> dict:
    try:
        message = str(error)
    except BaseException:  # noqa: BLE001 - a learner exception whose __str__ fails
        message = "<unprintable>"
    kind = type(error).__name__ if isinstance(type(error).__name__, str) else "Exception"
    if isinstance(error, _Timeout):
        kind = "Timeout"
    elif isinstance(error, wire.OutputTooLarge):
        kind = "OutputTooLarge"
    return {"type": kind, "message": message[:600], "where": _where(error.__traceback__)}


# ------------------------------------------------------------------------------------- running


def run_program(cfg: dict, ns: dict, send) -> list[dict]:
    for cell, source in cfg.get("cells", {}).items():
        lines = [line + "\n" for line in source.split("\n")]
        linecache.cache[f"<cell {cell}>"] = (len(source), None, lines, f"<cell {cell}>")
    errors, failed = [], []
    started = cpu_seconds()  # the cells' CPU time together is limited too: `load_timeout`
    skip = set(cfg.get("skip", []))
    statements = cfg["program"]
    for attempt in (0, 1):
        todo = range(len(statements)) if attempt == 0 else list(failed)
        failed = []
        for k in todo:
            if k in skip:
                continue
            st = statements[k]
            left = cfg["load_timeout"] - (cpu_seconds() - started)
            if left <= 0:
                errors.append({"k": k, "cell": st["cell"], "line": st["line"], "type": "Timeout", "where": "",
                               "message": f"not run: the notebook's cells used up their time limit "
                                          f"({cfg['load_timeout']:g} CPU seconds)"})
                continue
            send({"t": "stmt", "k": k})
            try:
                code = compile("\n" * (st["line"] - 1) + st["source"], f"<cell {st['cell']}>", "exec")
                with time_limit(min(cfg["statement_timeout"], left)):
                    exec(code, ns)
            except BaseException as error:  # noqa: BLE001 - a failing cell is recorded, never fatal
                if attempt == 0 and not st.get("is_import") and not isinstance(error, _Timeout):
                    failed.append(k)  # retried once: it may need a definition that comes later
                else:
                    errors.append({"k": k, "cell": st["cell"], "line": st["line"], **_describe_error(error)})
    return errors


def describe(ns: dict, names: list[str]) -> dict:
    out = {}
    for name in names:
        if name not in ns:
            out[name] = {"kind": "missing"}
            continue
        obj = ns[name]
        try:
            kind = "class" if isinstance(obj, type) else "function" if callable(obj) else "other"
            info = {"kind": kind, "type": str(type(obj).__name__)}
            try:
                target = obj.__init__ if kind == "class" else obj
                info["signature"] = [str(p) for p in inspect.signature(target).parameters if p != "self"]
            except (TypeError, ValueError):
                info["signature"] = None
        except BaseException as error:  # noqa: BLE001
            info = {"kind": "other", "type": "?", "error": _describe_error(error)["message"]}
        out[name] = info
    return out


def serve(cfg: dict, ns: dict, fd_in: int, send) -> None:
    import torch

    max_bytes = int(cfg["max_output_mb"] * 2**20)
    while True:
        try:
            header, tensors = wire.recv(fd_in)
        except wire.ChildGone:
            return
        op = header.get("op")
        if op == "exit":
            return
        started, cpu_started = time.perf_counter(), cpu_seconds()
        rng = tensors.pop("rng", None)
        if op == "reset_model":
            try:
                _reset_model()
                send({"t": "ok", "value": None, "mutated": [], "seconds": time.perf_counter() - started})
            except BaseException as error:  # noqa: BLE001
                send({"t": "error", **_describe_error(error), "seconds": time.perf_counter() - started})
            continue
        encoder = _encoder(max_bytes)
        try:
            _sync_hooks(header.get("hooks_keep"))
            if rng is not None:
                torch.set_rng_state(rng)
            with time_limit(header.get("timeout", 10.0)):
                if op == "call":
                    if "name" in header:
                        target = ns[header["name"]]
                    else:
                        target = HANDLES[int(header["handle"])]
                    args = wire.decode(header["args"], tensors, _decode_special)
                    kwargs = wire.decode(header["kwargs"], tensors, _decode_special)
                    guarded = header.get("guarded", [])
                    before = {k: tensors[k].clone() for k in guarded if k in tensors}
                    value = target(*args, **kwargs)
                    mutated = [k for k, old in before.items()
                               if (tensors[k].shape, tensors[k].dtype) != (old.shape, old.dtype)
                               or not torch.equal(tensors[k], old)]
                elif op == "getattr":
                    value, mutated = getattr(HANDLES[int(header["handle"])], str(header["name"])), []
                elif op == "setattr":
                    setattr(HANDLES[int(header["handle"])], str(header["name"]),
                            wire.decode(header["value"], tensors, _decode_special))
                    value, mutated = None, []
                elif op == "len":
                    value, mutated = len(HANDLES[int(header["handle"])]), []
                elif op == "getitem":
                    value = HANDLES[int(header["handle"])][wire.decode(header["key"], tensors, _decode_special)]
                    mutated = []
                elif op == "iter":
                    value, mutated = list(iter(HANDLES[int(header["handle"])])), []
                else:
                    raise wire.WireError(f"unknown operation {op!r}")
                tree = encoder.encode(value)
            model = _report_safely()
            send({"t": "ok", "value": tree, "mutated": mutated, "model": model,
                  "seconds": time.perf_counter() - started, "cpu": cpu_seconds() - cpu_started}, encoder.tensors)
        except BaseException as error:  # noqa: BLE001 - reported to the parent, which decides
            send({"t": "error", **_describe_error(error), "model": _report_safely(),
                  "seconds": time.perf_counter() - started, "cpu": cpu_seconds() - cpu_started})


def _report_safely():
    try:
        return _model_report()
    except BaseException:  # noqa: BLE001 - the learner broke the model: start it afresh instead
        try:
            _reset_model()
        except BaseException:  # noqa: BLE001
            pass
        return {"hooks": [], "changed": []}


class _IPythonStub:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def main(argv: list[str]) -> None:
    fd_in, fd_out = int(argv[0]), int(argv[1])

    def send(header, tensors=None):
        wire.send(fd_out, header, tensors)

    cfg, _ = wire.recv(fd_in)
    started = time.perf_counter()
    try:
        setup(cfg)
    except BaseException as error:  # noqa: BLE001
        send({"t": "setup_failed", **_describe_error(error), "trace": traceback.format_exc()[-2000:]})
        return
    send({"t": "setup", "seconds": time.perf_counter() - started})
    ns = {"__name__": "__main__", "__builtins__": builtins, "get_ipython": _IPythonStub(),
          "display": lambda *args, **kwargs: None}
    cpu_started = cpu_seconds()
    errors = run_program(cfg, ns, send)
    send({"t": "loaded", "errors": errors, "exercises": describe(ns, cfg["exercises"]),
          "seconds": time.perf_counter() - started, "cpu": cpu_seconds() - cpu_started})
    serve(cfg, ns, fd_in, send)


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.stdout.flush()
    os._exit(0)
