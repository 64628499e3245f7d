"""Decode once, serve from memory (`data.cache_decoded`): a split's frame pairs decoded and resized a single time
into uint8 tensors, instead of decoding every PNG on every epoch.

Plates are tiny (16x48 LR + 32x96 HR = 11.5 KB a pair in uint8, ~1.2 GB for 100,000 pairs), so a training split
fits in memory and the loader's cost per sample drops from a decode and a resize to an index. The pixels are
exactly the reader's: every pair comes from the wrapped dataset's own `__getitem__` (same decoding, resizing and
warnings) and is stored as the uint8 values its float tensor was made of, which converts back bit for bit.

A DataLoader fetches a whole batch at once (`__getitems__`: one tensor index per image stack, label columns
collated once), since per-sample dicts and their collation became the loader's cost once nothing is decoded; build it
with `collate_fn=collate`, which finishes such a batch and collates any other dataset's samples as default. Images
become float in the main process: a loader worker sends its batch's uint8 rows through the pipe, 4x fewer bytes than
floats, and moving them between processes is what costs most (3x the samples/s of float batches, measured).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate, get_worker_info

from lpasrn.data.plates import LR_FRAMES, PlateSRDataset

IMAGE_KEYS = ("lr", "hr", LR_FRAMES)  # LR_FRAMES: a multi-frame generator's stack, when the source makes one


def _decoded(source: PlateSRDataset, index: int) -> dict[str, Any]:
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


def _floats(images: torch.Tensor) -> torch.Tensor:
    """`images.float().div_(255)` bit for bit, on this thread alone (numpy): torch would spread it over the training
    process's intra-op threads, and a parallel region waits for its slowest thread, which on busy cores stalled the
    loader (measured on the shared 2-core machine: 2k-45k samples/s with 2 torch threads, ~150k with numpy)."""
    return torch.from_numpy(np.divide(images.numpy(), np.float32(255.0), dtype=np.float32))


class _Raw(NamedTuple):
    """A tensor as bytes, pickled inline: a tensor would go through shared memory, which was slower here."""

    data: bytes
    dtype: torch.dtype
    shape: tuple[int, ...]


def _tensor(raw: _Raw) -> torch.Tensor:
    flat = torch.frombuffer(bytearray(raw.data), dtype=raw.dtype) if raw.data else torch.empty(0, dtype=raw.dtype)
    return flat.view(raw.shape)


def _arrived(items: list[tuple[str, Any]]) -> dict[str, Any]:
    """A worker's `DecodedBatch` unpickled in the main process: the finished batch."""
    return DecodedBatch((key, _tensor(value) if isinstance(value, _Raw) else value) for key, value in items).floats()


class DecodedBatch(dict):
    """A batch `DecodedPlates.__getitems__` collated, its images still uint8: `collate` finishes it in the main
    process, a loader worker pickles it as bytes that unpickle into the finished batch."""

    def floats(self) -> dict[str, Any]:
        """The batch as default collation gives it: images float in [0, 1], exactly as `DecodedPlates[i]` makes them."""
        return {key: _floats(value) if key in IMAGE_KEYS else value for key, value in self.items()}

    def __reduce__(self):
        raw = [
            (key, _Raw(v.numpy().tobytes(), v.dtype, tuple(v.shape)) if isinstance(v, torch.Tensor) else v)
            for key, v in self.items()
        ]
        return _arrived, (raw,)

    def __missing__(self, key):
        if isinstance(key, int):  # default_collate reading "sample 0": the DataLoader lacks `collate_fn=collate`
            raise TypeError("a DecodedPlates batch is already collated: build its DataLoader with collate_fn=collate")
        raise KeyError(key)


def collate(batch: DecodedBatch | list[Any]) -> Any:
    """The DataLoader's collate_fn for any dataset: a DecodedPlates batch finished (or, in a loader worker, left for
    its unpickling in the main process to finish), other samples by default collation."""
    if isinstance(batch, DecodedBatch):
        return batch if get_worker_info() is not None else batch.floats()
    return default_collate(batch)


class DecodedPlates(Dataset):
    """Every item of `source` (a `PlateSRDataset`: dicts with float `lr`/`hr` in [0, 1] and labels), decoded now
    with `threads` threads (PIL releases the GIL while decoding) and kept as uint8."""

    def __init__(self, source: PlateSRDataset, threads: int = 1):
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
        """The batch default collation of `self[i]` would give (same keys, order, dtypes and values) once `collate`
        or a worker's pickling has made its uint8 images float."""
        rows = torch.as_tensor(indices, dtype=torch.long)
        batch = DecodedBatch(  # numpy's take: on one thread, as `_floats` (and 15x faster here than stack[rows])
            (key, torch.from_numpy(np.take(stack.numpy(), indices, axis=0))) for key, stack in self.images.items()
        )
        for key, column in self.columns.items():
            if isinstance(column, torch.Tensor):
                batch[key] = column.index_select(0, rows)
            elif column is None:
                batch[key] = default_collate([self.labels[index][key] for index in indices])
            else:
                batch[key] = [column[index] for index in indices]
        return batch
