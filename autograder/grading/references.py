"""Running one exercise's checks in the grader, with the references of public checks cached.

Grading a class runs the same public checks on every submission, and their inputs are seeded
(the learner distribution replays them from recorded outputs keyed by check and call index), so
the reference's answer to a public check's call is the same for every submission: computing it
once per grading process is enough. The key is the exercise, the check, the call's index within
the check and a digest of everything the reference receives (the arguments of ``ref(...)``, or
the code and captured values of the function given to ``ref.apply``); a call whose inputs cannot
be digested (an object the digest does not know, the learner's output, a model carrying the
check's own hooks) is simply not cached. Torch's global random state is honoured exactly: an entry
that changed it is keyed by the state before the call and restores the state after it, an entry
that left it as it was is valid whatever the state. Hidden checks are never cached (their inputs
are fresh random ones). Cached values are cloned on the way in and on the way out.
"""
from __future__ import annotations

import hashlib
import types

import torch

from autograder.core import DEFAULT_SEED, Exercise, Reference, Result, run_checks

MAX_ENTRIES = 4096
MAX_ENTRY_BYTES = 64 * 2**20
CACHE: dict = {}  # key -> (rng_state_after or None, value)
STATS = {"hits": 0, "misses": 0, "uncacheable": 0}


class Uncacheable(Exception):
    pass


def _digest(value, h, depth: int = 0) -> None:
    if depth > 30:
        raise Uncacheable("too deep")
    kind = type(value)
    if value is None or kind in (bool, int, float, str, complex, bytes):
        h.update(f"{kind.__name__}:{value!r};".encode())
    elif kind in (torch.Tensor, torch.nn.Parameter):
        t = value.detach()
        if t.layout != torch.strided or t.device.type != "cpu":
            raise Uncacheable("tensor layout")
        h.update(f"T{t.dtype}{tuple(t.shape)}{value.requires_grad};".encode())
        if t.numel():
            h.update(t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    elif kind in (list, tuple):
        h.update(f"{kind.__name__}{len(value)}[".encode())
        for item in value:
            _digest(item, h, depth + 1)
        h.update(b"]")
    elif kind is dict:
        h.update(f"dict{len(value)}{{".encode())
        for k, v in value.items():
            _digest(k, h, depth + 1)
            _digest(v, h, depth + 1)
        h.update(b"}")
    elif isinstance(value, (torch.dtype, torch.device)):
        h.update(f"{value!r};".encode())
    elif isinstance(value, (types.FunctionType, types.LambdaType)):
        _digest_code(value.__code__, h, depth + 1)
        _digest(value.__defaults__, h, depth + 1)
        _digest(value.__kwdefaults__, h, depth + 1)
        for cell in value.__closure__ or ():
            try:
                content = cell.cell_contents
            except ValueError:
                content = None
            _digest(content, h, depth + 1)
    elif isinstance(value, types.ModuleType):
        h.update(f"module:{value.__name__};".encode())
    elif isinstance(value, types.BuiltinFunctionType):
        h.update(f"builtin:{getattr(value, '__module__', '')}.{value.__qualname__};".encode())
    else:
        _digest_model_or_cache(value, h, depth)


def _digest_code(code: types.CodeType, h, depth: int) -> None:
    h.update(f"code:{code.co_filename}:{code.co_firstlineno}:{code.co_name}:{code.co_names}:{code.co_varnames};".encode())
    h.update(code.co_code)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _digest_code(const, h, depth + 1)
        else:
            _digest(const, h, depth + 1)


def _digest_model_or_cache(value, h, depth: int) -> None:
    from autograder.core import check_model, check_model_name
    from autograder.grading.sandbox import _is_cache

    if _is_cache(value):
        if value.model is not check_model():
            raise Uncacheable("cache of another model")
        h.update(f"cache{bool(value.has_batch_dim)}".encode())
        _digest(dict(value.cache_dict), h, depth + 1)
    elif isinstance(value, torch.nn.Module):
        if value is not check_model() or _hooked(value):
            raise Uncacheable("a model other than the unhooked check model")
        h.update(f"check_model:{check_model_name() or ''};".encode())
    else:
        raise Uncacheable(type(value).__name__)


def _hooked(model) -> bool:
    """Whether the model carries hooks of the check's own (they would change what the reference computes;
    the no-op stand-ins for the learner's hooks do not)."""
    from autograder.grading.sandbox import ModelMirror

    for point in model.hook_dict.values():
        if any(not ModelMirror._is_marker(h) for h in (*point.fwd_hooks, *point.bwd_hooks)):
            return True
    return False


def _copy(value, budget: list):
    """A deep copy of a reference output made of tensors, numbers, strings and containers."""
    kind = type(value)
    if value is None or kind in (bool, int, float, str, complex, bytes):
        return value
    if kind in (torch.Tensor, torch.nn.Parameter):
        budget[0] -= value.numel() * value.element_size()
        if budget[0] < 0:
            raise Uncacheable("too large")
        return value.detach().clone()
    if kind in (list, tuple):
        return kind(_copy(v, budget) for v in value)
    if kind is dict:
        return {k: _copy(v, budget) for k, v in value.items()}
    if isinstance(value, torch.dtype):
        return value
    raise Uncacheable(kind.__name__)


class CachedReference(Reference):
    """A live :class:`~autograder.core.Reference` whose answers are kept across submissions."""

    def __call__(self, *args, **kwargs):
        return self._cached(("call", args, kwargs), lambda reference: reference(*args, **kwargs))

    def apply(self, compute):
        return self._cached(("apply", compute), compute)

    def _cached(self, material, compute):
        index = self.calls
        try:
            h = hashlib.sha256(f"{self.exercise}/{self.check}/{index};".encode())
            _digest(material, h)
            key = h.hexdigest()
        except Uncacheable:
            STATS["uncacheable"] += 1
            return Reference.apply(self, compute)
        rng_before = torch.get_rng_state()
        rng_key = key + hashlib.sha256(rng_before.numpy().tobytes()).hexdigest()
        for k in (key, rng_key):
            if k in CACHE:
                self.calls += 1
                STATS["hits"] += 1
                rng_after, value = CACHE[k]
                if rng_after is not None:
                    torch.set_rng_state(rng_after)
                return _copy(value, [float("inf")])
        STATS["misses"] += 1
        value = Reference.apply(self, compute)
        if len(CACHE) < MAX_ENTRIES:
            try:
                kept = _copy(value, [MAX_ENTRY_BYTES])
            except Uncacheable:
                return value
            rng_after = torch.get_rng_state()
            if torch.equal(rng_after, rng_before):
                CACHE[key] = (None, kept)
            else:
                CACHE[rng_key] = (rng_after, kept)
        return value


def run_exercise(impl, exercise: Exercise, *, seed: str = DEFAULT_SEED, cache: bool = True) -> Result:
    """Every check of ``exercise`` (hidden ones included) against ``impl``, as
    :func:`autograder.core.run_checks` in live mode, with public checks' references cached and
    hidden checks' inputs drawn from ``seed`` (the submission's hash when grading).

    Hidden checks run first: code that answers from the recorded outputs of public checks, in
    the order it is called, is then out of step in every check. Results keep the exercise's order."""

    def reference(check):
        kind = CachedReference if cache and not check.hidden else Reference
        return kind(exercise.name, check.name, "live")

    hidden_first = Exercise(exercise.name, exercise.chapter, sorted(exercise.checks, key=lambda c: not c.hidden))
    result = run_checks(impl, hidden_first, include_hidden=True, reference=reference, seed=seed)
    order = [c.name for c in exercise.checks]
    result.results.sort(key=lambda r: order.index(r.name))
    return result
