"""The wire between the trusted grader and the sandbox: JSON plus safetensors, never pickle.

A frame is ``<QQ`` (JSON length, blob length), a UTF-8 JSON header, and a safetensors blob
holding the tensors the header refers to by name. Values are encoded as a JSON tree whose
containers are tagged (``{"l": [...]}`` list, ``{"t": [...]}`` tuple, ``{"d": [[k, v], ...]}``
dict, ``{"T": name, "rg": bool}`` tensor, ``{"N": name}`` numpy array, ``{"c": [re, im]}``
complex, ``{"dt": "float32"}`` dtype, ``{"M": name}`` the check model, ``{"C": ..}`` an
ActivationCache, ``{"H": id, ...}`` a handle to an object living in the sandbox); scalars are
plain JSON. Decoding builds fresh plain Python and ``torch.Tensor`` objects: nothing the learner
wrote (its classes, ``__eq__``, ``__bool__``, tensor subclasses) crosses to the grader.
"""
from __future__ import annotations

import json
import os
import select
import struct
import time

import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

HEADER = struct.Struct("<QQ")
MAX_JSON_BYTES = 64 * 2**20
MAX_TENSOR_BYTES = 256 * 2**20
MAX_DEPTH = 40
MAX_ITEMS = 200_000


class WireError(Exception):
    """A frame or a value that breaks the protocol (too large, too deep, malformed)."""


class OutputTooLarge(WireError):
    pass


class ChildGone(Exception):
    """The sandbox closed its end (it exited, crashed, or was killed)."""


class Deadline(Exception):
    """No answer before the deadline."""


# ------------------------------------------------------------------------------------- frames


def send(fd: int, header: dict, tensors: dict[str, torch.Tensor] | None = None,
         deadline: float | None = None) -> None:
    body = json.dumps(header, separators=(",", ":")).encode()
    blob = save_tensors(tensors) if tensors else b""
    data = HEADER.pack(len(body), len(blob)) + body + blob
    view = memoryview(data)
    while view:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [fd], [], left)[1]:
                raise Deadline()
            written = os.write(fd, view[: select.PIPE_BUF])
        else:
            written = os.write(fd, view[: 1 << 20])
        view = view[written:]


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    chunks, remaining = [], n
    while remaining:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Deadline()
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                raise Deadline()
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise ChildGone()
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def recv(fd: int, deadline: float | None = None, *, max_tensor_bytes: int = MAX_TENSOR_BYTES):
    """One frame: (header dict, tensors dict). Raises Deadline, ChildGone or WireError."""
    json_len, blob_len = HEADER.unpack(_read_exact(fd, HEADER.size, deadline))
    if json_len > MAX_JSON_BYTES:
        raise OutputTooLarge(f"a {json_len / 2**20:.0f} MB message")
    if blob_len > max_tensor_bytes + 2**20:
        raise OutputTooLarge(f"{blob_len / 2**20:.0f} MB of tensors")
    body = _read_exact(fd, json_len, deadline)
    blob = _read_exact(fd, blob_len, deadline) if blob_len else b""
    try:
        header = json.loads(body)
        tensors = load_tensors(blob) if blob else {}
    except Exception as error:  # noqa: BLE001 - anything malformed is a protocol error
        raise WireError(f"malformed message: {type(error).__name__}: {str(error)[:200]}") from None
    if not isinstance(header, dict):
        raise WireError("malformed message: header is not an object")
    return header, tensors


# ------------------------------------------------------------------------------------- values


class Encoder:
    """Encode a value as (JSON tree, tensors). ``special(value)`` may return a tree for values
    it knows (a model, a handle); ``fallback(value)`` is asked for anything else."""

    def __init__(self, special=None, fallback=None, prefix: str = "t", max_bytes: int = MAX_TENSOR_BYTES):
        self.special, self.fallback, self.prefix, self.max_bytes = special, fallback, prefix, max_bytes
        self.tensors: dict[str, torch.Tensor] = {}
        self.originals: dict[str, torch.Tensor] = {}
        self.nbytes = 0
        self.items = 0

    def tensor(self, value: torch.Tensor, tag: str = "T") -> dict:
        t = torch.Tensor.detach(value)
        if t.layout != torch.strided:
            t = t.to_dense()
        self.nbytes += t.numel() * t.element_size()
        if self.nbytes > self.max_bytes:
            raise OutputTooLarge(f"more than {self.max_bytes / 2**20:.0f} MB of tensors "
                                 f"(a tensor of shape {tuple(t.shape)})")
        name = f"{self.prefix}{len(self.tensors)}"
        plain = torch.Tensor.cpu(t).as_subclass(torch.Tensor).contiguous().clone()
        self.tensors[name] = plain
        self.originals[name] = value
        tree = {tag: name}
        if tag == "T" and value.requires_grad:
            tree["rg"] = True
        return tree

    def encode(self, value, depth: int = 0):
        self.items += 1
        if depth > MAX_DEPTH or self.items > MAX_ITEMS:
            raise OutputTooLarge("a value nested too deeply or with too many items")
        if value is None or isinstance(value, (bool, str)):
            if isinstance(value, str) and len(value) > 1_000_000:
                raise OutputTooLarge("a string of more than a million characters")
            return value if type(value) in (bool, str, type(None)) else str.__str__(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return int.__int__(value)
        if isinstance(value, float):
            return float.__float__(value)
        if self.special is not None:
            tree = self.special(value)
            if tree is not None:
                return tree
        if isinstance(value, torch.Tensor):
            return self.tensor(value)
        if isinstance(value, complex):
            return {"c": [complex.__complex__(value).real, complex.__complex__(value).imag]}
        if isinstance(value, torch.dtype):
            return {"dt": str(value).removeprefix("torch.")}
        if type(value).__module__ == "numpy":
            import numpy as np

            if isinstance(value, np.ndarray):
                return self.tensor(torch.from_numpy(np.ascontiguousarray(value)), "N")
            if isinstance(value, np.generic):
                return self.encode(value.item(), depth + 1)
        if isinstance(value, list):
            return {"l": [self.encode(v, depth + 1) for v in list.__iter__(value)]}
        if isinstance(value, tuple):
            return {"t": [self.encode(v, depth + 1) for v in tuple.__iter__(value)]}
        if isinstance(value, dict):
            return {"d": [[self.encode(k, depth + 1), self.encode(v, depth + 1)] for k, v in value.items()]}
        if self.fallback is not None:
            return self.fallback(value)
        raise TypeError(f"cannot send a {type(value).__name__} to the sandbox: send tensors, numbers, strings, "
                        "lists, tuples, dicts, check_model() or an ActivationCache of it")


def decode(tree, tensors: dict, special=None, depth: int = 0):
    """Rebuild a value from (JSON tree, tensors) as fresh plain objects."""
    if depth > MAX_DEPTH + 5:
        raise WireError("value nested too deeply")
    if tree is None or type(tree) in (bool, int, float, str):
        return tree
    if type(tree) is not dict or len(tree) < 1:
        raise WireError(f"malformed value: {str(tree)[:80]}")
    if "l" in tree:
        return [decode(v, tensors, special, depth + 1) for v in tree["l"]]
    if "t" in tree:
        return tuple(decode(v, tensors, special, depth + 1) for v in tree["t"])
    if "d" in tree:
        out = {}
        for k, v in tree["d"]:
            key = decode(k, tensors, special, depth + 1)
            if isinstance(key, list):
                key = tuple(key)
            out[key] = decode(v, tensors, special, depth + 1)
        return out
    if "T" in tree:
        t = tensors[tree["T"]]
        return t.requires_grad_(True) if tree.get("rg") and t.is_floating_point() else t
    if "N" in tree:
        return tensors[tree["N"]].numpy()
    if "c" in tree:
        return complex(float(tree["c"][0]), float(tree["c"][1]))
    if "dt" in tree:
        dtype = getattr(torch, str(tree["dt"]), None)
        if not isinstance(dtype, torch.dtype):
            raise WireError(f"unknown dtype {tree['dt']!r}")
        return dtype
    if special is not None:
        return special(tree, tensors, depth)
    raise WireError(f"unexpected value tag {sorted(tree)[:3]}")
