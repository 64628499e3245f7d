"""Decode once, serve from memory (`data.cache_decoded`): a split's frame pairs decoded and resized a single time
into uint8 tensors, instead of decoding every PNG on every epoch.

Plates are tiny (16x48 LR + 32x96 HR = 11.5 KB a pair in uint8, ~1.2 GB for 100,000 pairs), so a training split
fits in memory and the loader's cost per sample drops from a decode and a resize to an index. The pixels are
exactly the reader's: every pair comes from the wrapped dataset's own `__getitem__` (same decoding, resizing and
warnings) and is stored as the uint8 values its float tensor was made of, which converts back bit for bit.

A DataLoader fetches a whole batch at once (`__getitems__`: one tensor index per image stack, one conversion to
float), since per-sample dicts and their collation became the loader's cost once nothing is decoded; build it with
`collate_fn=collate`, which passes such a batch on and collates any other dataset's samples as default.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch
from torch.utils.data import Dataset, default_collate

from lpasrn.data.plates import LR_FRAMES

IMAGE_KEYS = ("lr", "hr", LR_FRAMES)  # LR_FRAMES: a multi-frame generator's stack, when the source makes one


def _decoded(source: Dataset, index: int) -> dict[str, Any]:
    """One item with its images as the uint8 values their float tensors were made of (exact: k / 255 * 255 = k)."""
    item = source[index]
    return {
        key: item[key].mul(255.0).round_().to(torch.uint8) if key in IMAGE_KEYS else value
        for key, value in item.items()
    }


def _column(values: list[Any]) -> torch.Tensor | list[Any] | None:
    """A label column collated once, as default collation would collate any batch of it: strings stay a list, ints
    become one int64 tensor; None for anything else (collated per batch)."""
    kinds = {type(value) for value in values}
    return default_collate(values) if len(kinds) == 1 and kinds <= {str, int, float, bool} else None


class DecodedBatch(dict):
    """A batch `DecodedPlates.__getitems__` has already collated; `collate` hands it on as a plain dict."""

    def __missing__(self, key):
        if isinstance(key, int):  # default_collate reading "sample 0": the DataLoader lacks `collate_fn=collate`
            raise TypeError("a DecodedPlates batch is already collated: build its DataLoader with collate_fn=collate")
        raise KeyError(key)


def collate(batch: DecodedBatch | list[Any]) -> Any:
    """The DataLoader's collate_fn for any dataset: a DecodedPlates batch as it is, other samples by default."""
    return dict(batch) if isinstance(batch, DecodedBatch) else default_collate(batch)


class DecodedPlates(Dataset):
    """Every item of `source` (a `PlateSRDataset`: dicts with float `lr`/`hr` in [0, 1] and labels), decoded now
    with `threads` threads (PIL releases the GIL while decoding) and kept as uint8."""

    def __init__(self, source: Dataset, threads: int = 1):
        with ThreadPoolExecutor(max(1, threads)) as pool:
            items = list(pool.map(lambda index: _decoded(source, index), range(len(source))))
        present = [key for key in IMAGE_KEYS if items and key in items[0]]
        self.images = {key: torch.stack([item.pop(key) for item in items]) for key in present}
        self.labels = items  # what is left of each item: text, layout, track id, frame, index
        self.columns = {key: _column([item[key] for item in items]) for key in (items[0] if items else {})}

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, Any]:
        images = {key: stack[index].float().div_(255.0) for key, stack in self.images.items()}
        return images | self.labels[index]

    def __getitems__(self, indices: list[int]) -> DecodedBatch:
        """A batch as default collation of `self[i]` would give it (same keys, order, dtypes and values)."""
        rows = torch.as_tensor(indices, dtype=torch.long)  # index_select: 15x faster here than stack[rows] on uint8
        batch = DecodedBatch(
            (key, stack.index_select(0, rows).float().div_(255.0)) for key, stack in self.images.items()
        )
        for key, column in self.columns.items():
            if isinstance(column, torch.Tensor):
                batch[key] = column.index_select(0, rows)
            elif column is None:
                batch[key] = default_collate([self.labels[index][key] for index in indices])
            else:
                batch[key] = [column[index] for index in indices]
        return batch
