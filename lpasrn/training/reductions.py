"""Sums over the data-parallel ranks, by name: callers read `totals["tracks_right"]`, never `totals[6]`."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.distributed as dist


def all_reduce_sums(values: Mapping[str, float], device: torch.device) -> dict[str, float]:
    """Each value summed over every rank (unchanged outside DDP). Every rank must pass the same names; they travel
    in sorted order, so the dict's own order does not matter."""
    names = sorted(values)
    if not (dist.is_available() and dist.is_initialized()):
        return {name: float(values[name]) for name in names}
    tensor = torch.tensor([float(values[name]) for name in names], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return dict(zip(names, tensor.tolist()))
