"""Decode once, serve from memory (`data.cache_decoded`): a split's frame pairs decoded and resized a single time
into uint8 tensors, instead of decoding every PNG on every epoch.

Plates are tiny (16x48 LR + 32x96 HR = 11.5 KB a pair in uint8, ~1.2 GB for 100,000 pairs), so a training split
fits in memory and the loader's cost per sample drops from a decode and a resize to an index. The pixels are
exactly the reader's: every pair comes from the wrapped dataset's own `__getitem__` (same decoding, resizing and
warnings) and is stored as the uint8 values its float tensor was made of, which converts back bit for bit.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch
from torch.utils.data import Dataset

from lpasrn.data.plates import LR_FRAMES, PlateSRDataset

IMAGE_KEYS = ("lr", "hr", LR_FRAMES)  # LR_FRAMES: a multi-frame generator's stack, when the source makes one


def _decoded(source: PlateSRDataset, index: int) -> dict[str, Any]:
    """One item with its images as the uint8 values their float tensors were made of (exact: k / 255 * 255 = k)."""
    item = source[index]
    return {
        key: item[key].mul(255.0).round_().to(torch.uint8) if key in IMAGE_KEYS else value
        for key, value in item.items()
    }


class DecodedPlates(Dataset):
    """Every item of `source` (a `PlateSRDataset`: dicts with float `lr`/`hr` in [0, 1] and labels), decoded now
    with `threads` threads (PIL releases the GIL while decoding) and kept as uint8."""

    def __init__(self, source: PlateSRDataset, threads: int = 1):
        with ThreadPoolExecutor(max(1, threads)) as pool:
            items = list(pool.map(lambda index: _decoded(source, index), range(len(source))))
        present = [key for key in IMAGE_KEYS if items and key in items[0]]
        self.images = {key: torch.stack([item.pop(key) for item in items]) for key in present}
        self.labels = items  # what is left of each item: text, layout, track id, frame, index

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, Any]:
        images = {key: stack[index].float().div_(255.0) for key, stack in self.images.items()}
        return images | self.labels[index]
