"""Peak memory of one training step of a one-shot method, measured (CUDA allocator peak, or on CPU the
activations autograd saves for backward)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from nasforge.errors import NasforgeError
from nasforge.oneshot._registry import METHODS
from nasforge.oneshot._supernet import Supernet


def _saved_bytes(net: Supernet, fn: Callable[[], Tensor]) -> int:
    """Bytes of the distinct tensors autograd saves for backward while ``fn`` runs its forward (parameters
    excluded): the activation memory a training step holds at its peak, between forward and backward."""
    params = {p.untyped_storage().data_ptr() for p in net.parameters()}
    seen: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        st = t.untyped_storage()
        ptr = st.data_ptr()
        if ptr not in params and ptr not in seen:
            seen[ptr] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = fn()
    loss.backward()
    return sum(seen.values())


def _cuda_peak(fn: Callable[[], Tensor], device: torch.device) -> int:
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn().backward()
    torch.cuda.synchronize(device)
    return int(torch.cuda.max_memory_allocated(device))


def step_peak_memory(net: Supernet, method: str, x: Tensor, y: Tensor, seed: int = 0) -> dict[str, Any]:
    """Peak memory of one training step of ``method`` on batch (x, y), measured.

    CUDA: ``torch.cuda.max_memory_allocated`` over forward + backward (weights, gradients and activations).
    CPU: bytes of the activations autograd saves for backward (distinct storages, parameters excluded),
    counted with ``saved_tensors_hooks`` during the forward. DARTS' step is one mixed forward (all
    candidates); ProxylessNAS' is the larger of its weight step (one sampled path) and its architecture
    step (two sampled paths under binary gates); SPOS' is one uniformly sampled path.
    """
    rng = np.random.default_rng(seed)
    sizes = net.unit_sizes()
    net.train()

    def darts_fwd() -> Tensor:
        net.set_darts()
        return F.cross_entropy(net(x), y)

    def single_fwd() -> Tensor:
        net.set_single([int(rng.integers(n)) for n in sizes])
        return F.cross_entropy(net(x), y)

    def gates_fwd() -> Tensor:
        pairs: list[tuple[int, int]] = []
        for n in sizes:
            a, b = rng.choice(n, size=2, replace=False) if n > 1 else (0, 0)
            pairs.append((int(a), int(b)))
        net.set_gates(pairs, [p[0] for p in pairs])
        return F.cross_entropy(net(x), y)

    steps = {"darts": [darts_fwd], "proxyless": [single_fwd, gates_fwd], "spos": [single_fwd]}
    if method not in METHODS:
        raise NasforgeError(f"unknown one-shot method {method!r}; allowed: {', '.join(METHODS)}")
    dev = x.device
    peaks = []
    for fn in steps[method]:
        net.zero_grad(set_to_none=True)
        peaks.append(_cuda_peak(fn, dev) if dev.type == "cuda" else _saved_bytes(net, fn))
    net.zero_grad(set_to_none=True)
    kind = "cuda max_memory_allocated" if dev.type == "cuda" else "autograd saved activations"
    return {"peak_memory_bytes": int(max(peaks)), "peak_memory_kind": kind}
