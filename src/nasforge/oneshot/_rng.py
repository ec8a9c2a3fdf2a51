"""Seeded torch randomness without touching the caller's: every draw the one-shot code makes comes from a
``torch.Generator`` it passes explicitly, or, for draws it cannot route (module init, dropout), from torch's
default RNG forked for the duration and set to a state derived from the run's seed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


def generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed`` (the same seed gives the same draws)."""
    return torch.Generator(device=device).manual_seed(int(seed))


@contextmanager
def torch_seeded(seed: int, device: torch.device | str = "cpu") -> Iterator[None]:
    """Inside, torch's default RNG (and ``device``'s, for CUDA) starts from ``seed``'s state; after, the caller's
    RNG state is back as it was (``torch.random.fork_rng``): the same seed gives the same draws, and nothing
    outside sees them. The state is copied from a seeded ``torch.Generator`` (no global seeding)."""
    dev = torch.device(device)
    cuda = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.random.set_rng_state(generator(seed).get_state())
        if cuda:
            torch.cuda.set_rng_state(generator(seed, dev).get_state(), cuda[0])
        yield
