"""A stage's data on one rank: the train loader (a shuffled share of the train split, the hard-example curriculum,
fresh synthetic plates, or the runner's stream of a packed dataset) and this rank's validation shard."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from experiments.errors import UserError
from lpasrn.config import DataConfig, LpasrnConfig
from lpasrn.data import packed
from lpasrn.data.decoded import DecodedPlates, collate
from lpasrn.data.hard_mining import CurriculumSampler
from lpasrn.data.plates import PlateSRDataset, PlateTrack
from lpasrn.data.splits import build_splits
from lpasrn.data.synthetic_stream import FreshPlateSampler, SyntheticPlateDataset
from lpasrn.training.session import TrainBatches, TrainSession
from lpasrn.training.stages import StageSpec

logger = logging.getLogger(__name__)

DEFAULT_LOADER_WORKERS = 2  # where samples are decoded from files or rendered on the fly


@dataclass
class StageData:
    train_set: PlateSRDataset | DecodedPlates | SyntheticPlateDataset | None  # None: streamed (Ray Data)
    train_loader: DataLoader | TrainBatches
    train_sampler: DistributedSampler | CurriculumSampler | FreshPlateSampler | TrainBatches
    val_loader: DataLoader


def streams_train_split(cfg: LpasrnConfig, stage: StageSpec) -> bool:
    """Whether a runner that can stream (Ray Train with Ray Data) should stream this stage's train split: a packed
    dataset, unless the stage trains on synthetic plates instead or mines hard examples (the curriculum draws
    samples by index, with replacement, so that stage reads the split into memory on each worker)."""
    return (
        packed.is_packed(cfg.data.root)
        and not stage.hard_mining
        and cfg.data.synthetic_train_samples == 0
        and stacked_frames(cfg, stage) == 1
    )  # a frame's neighbours are other rows: read into memory instead


def stacked_frames(cfg: LpasrnConfig, stage: StageSpec) -> int:
    """Frames per sample: the multi-frame generator's stack, or one for stages that train only the OCR."""
    return 1 if stage.trains_ocr_only else cfg.model.generator_frames


def _train_samples(
    cfg: LpasrnConfig, stage: StageSpec, session: TrainSession, tracks: list[PlateTrack], streamed: bool
):
    """The stage's training samples and how each rank draws them: fresh synthetic plates every epoch, the
    hard-example curriculum, or a shuffled share of the dataset's train split."""
    data = cfg.data
    if streamed:
        stream = SyntheticPlateDataset(
            data.synthetic_train_samples,
            data.lr_size,
            data.scale,
            data.synthetic_seed,
            style=data.synthetic_style,
            generator_frames=stacked_frames(cfg, stage),
        )
        return stream, FreshPlateSampler(len(stream), session.world_size, session.world_rank)
    train_set = _plate_pairs(tracks, data, stacked_frames(cfg, stage))
    if stage.hard_mining:
        return train_set, CurriculumSampler(
            len(train_set), stage.cfg.epochs, session.world_size, session.world_rank, seed=cfg.run.seed
        )
    return train_set, DistributedSampler(
        train_set,
        num_replicas=session.world_size,
        rank=session.world_rank,
        shuffle=True,
        seed=cfg.run.seed,
        drop_last=False,
    )


def _plate_pairs(tracks: list[PlateTrack], data: DataConfig, frames: int) -> PlateSRDataset | DecodedPlates:
    """A split's frame pairs: decoded once into memory (`data.cache_decoded`), or read from their files each time."""
    pairs = PlateSRDataset(tracks, data.lr_size, data.scale, frames)
    return DecodedPlates(pairs, threads=torch.get_num_threads()) if data.cache_decoded else pairs


def _val_shard(tracks: list[PlateTrack], session: TrainSession) -> list[PlateTrack]:
    """Validation is sharded by track, so each rank can vote over a track's frames on its own."""
    return tracks[session.world_rank :: session.world_size]


def _packed_splits(cfg: LpasrnConfig, train_streamed: bool) -> tuple[dict[str, list[PlateTrack]], int]:
    """A packed dataset's validation tracks (and its train tracks unless they are streamed), read into memory with
    pyarrow, and how many train tracks it has."""
    data = cfg.data
    packed.refuse_split_file(data.root, data.split_file)
    manifest = packed.read_manifest(data.root)
    wanted = ["val" if manifest.num_tracks("val") else "test"] + ([] if train_streamed else ["train"])
    return packed.read_split_tracks(data.root, wanted, manifest=manifest), manifest.num_tracks("train")


def build_stage_data(cfg: LpasrnConfig, stage: StageSpec, session: TrainSession) -> StageData:
    data = cfg.data
    stream = session.train_batches(data.batch_size, cfg.run.seed) if streams_train_split(cfg, stage) else None
    synthetic = data.synthetic_train_samples > 0 and not stage.hard_mining  # the miner needs a fixed sample set
    if packed.is_packed(data.root):
        splits, num_train = _packed_splits(cfg, train_streamed=stream is not None or synthetic)
    else:
        splits, skipped = build_splits(data.root, data.split_file, data.split_ratios, data.split_seed, data.skip_bad)
        num_train = len(splits["train"])
        if skipped and session.world_rank == 0:
            logger.warning("skipped %d bad tracks under %s", len(skipped), data.root)
    if not num_train and not synthetic:
        raise UserError(f"{data.split_file or data.root}: the train split is empty")
    val_tracks = splits["val"] or splits["test"]
    if not val_tracks:
        raise UserError(f"{data.split_file or data.root}: no val (or test) tracks to choose the best checkpoint")
    train_loader: DataLoader | TrainBatches
    if stream is not None:
        train_set, sampler, train_loader = None, stream, stream
    else:
        train_set, sampler = _train_samples(cfg, stage, session, splits["train"], synthetic)
        train_loader = _loader(train_set, data, session, sampler=sampler, drop_last=len(train_set) > data.batch_size)
    val_set = _plate_pairs(_val_shard(val_tracks, session), data, stacked_frames(cfg, stage))
    return StageData(train_set, train_loader, sampler, _loader(val_set, data, session, shuffle=False))


def loader_workers(data: DataConfig, dataset: Dataset) -> int:
    """`data.loader_workers`, or when it is unset: none for a split decoded into memory, two otherwise
    (`bench/loader_vs_gpu.py`: 158k samples/s in the training process against 16.5k through two workers)."""
    if data.loader_workers is not None:
        return data.loader_workers
    return 0 if isinstance(dataset, DecodedPlates) else DEFAULT_LOADER_WORKERS


def _loader(dataset: Dataset, data: DataConfig, session: TrainSession, **options: Any) -> DataLoader:
    workers = loader_workers(data, dataset)
    return DataLoader(
        dataset,
        batch_size=data.batch_size,
        num_workers=workers,
        pin_memory=session.device.type == "cuda",
        persistent_workers=workers > 0,
        collate_fn=collate,  # a decoded split's batches come collated (`DecodedPlates.__getitems__`)
        **options,
    )
