"""A packed dataset's train split streamed by Ray Data into Ray Train workers.

The driver builds the dataset (`packed_train_dataset`): `ray.data.read_parquet` over the train shards (local or in
a bucket, through the same pyarrow filesystem as the runs), decoded in Ray Data tasks by `lpasrn.data.packed.
decode_rows`, the function and resizing every other reader uses, so a streamed sample has the pixels the folder
reader gives it. Ray Train splits it between the workers (`streaming_split(equal=True)`: every rank the same
number of rows); a worker iterates its shard once per epoch (`ShardBatches`) and gets the batch dicts a DataLoader
over `PlateSRDataset` gives, with each sample's stable `index`. Only the train split streams; validation is read
into memory on each worker (plates are small), so its figures are those of a local run.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from typing import Any

import ray.data
import torch

from experiments import storage
from lpasrn.config import LpasrnConfig
from lpasrn.data import packed
from lpasrn.data.plates import array_to_tensor

TRAIN_DATASET = "train"
DECODE_BATCH_ROWS = 256  # rows per Ray Data decoding task call
_READ_COLUMNS = ["index", "track_id", "frame", "text", "layout", "lr_name", "hr_name", "lr", "hr"]


def _paths_and_filesystem(uris: list[str]):
    """Shard locations as read_parquet wants them: bucket paths with their pyarrow filesystem, or local paths."""
    if not storage.is_uri(uris[0]):
        return uris, None
    filesystem, _ = storage.resolve(uris[0])
    return [storage.resolve(uri)[1] for uri in uris], filesystem


def packed_train_dataset(cfg: LpasrnConfig) -> tuple[ray.data.Dataset, int]:
    """The decoded train split of `cfg.data.root` as a Ray Dataset, and its number of samples."""
    manifest = packed.read_manifest(cfg.data.root)
    uris = manifest.shard_uris("train")
    paths, filesystem = _paths_and_filesystem(uris)
    dataset = ray.data.read_parquet(
        paths, filesystem=filesystem, columns=_READ_COLUMNS, shuffle=ray.data.FileShuffleConfig(seed=cfg.run.seed)
    )
    decoded = dataset.map_batches(
        functools.partial(packed.decode_rows, lr_size=cfg.data.lr_size, scale=cfg.data.scale),
        batch_size=DECODE_BATCH_ROWS,
        batch_format="numpy",
    )
    return decoded, manifest.num_samples("train")


class ShardBatches:
    """This worker's share of the streamed train split, as `lpasrn.training.session.TrainBatches`.

    Rows arrive in the order Ray Data produces them; a local shuffle buffer, seeded per epoch, mixes them further.
    """

    def __init__(self, shard, num_samples: int, world_size: int, batch_size: int, seed: int):
        self.shard, self.batch_size, self.seed = shard, batch_size, seed
        self.rows = num_samples // world_size  # streaming_split(equal=True) drops the remainder
        self.drop_last = self.rows > batch_size  # as the DataLoader path decides; the same on every rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.rows // self.batch_size if self.drop_last else math.ceil(self.rows / self.batch_size)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        buffer = max(self.batch_size, min(self.rows, 8 * self.batch_size))
        batches = self.shard.iter_batches(
            batch_size=self.batch_size,
            batch_format="numpy",
            drop_last=self.drop_last,
            local_shuffle_buffer_size=buffer,
            local_shuffle_seed=self.seed * 100_003 + self.epoch,
        )
        for batch in batches:
            yield {
                "lr": array_to_tensor(batch["lr"]),
                "hr": array_to_tensor(batch["hr"]),
                "text": [str(text) for text in batch["text"]],
                "layout": [str(x) for x in batch["layout"]],
                "track_id": [str(x) for x in batch["track_id"]],
                "frame": torch.from_numpy(batch["frame"]),
                "index": torch.from_numpy(batch["index"]),
            }
