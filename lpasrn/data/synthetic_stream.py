"""Training plates rendered on the fly: data that does not run out, and needs no disk.

Sample `i` is plate `i` of `lpasrn synth`'s generator with the stream's seed (one frame and its LR degradation,
or `generator_frames` of them for a multi-frame generator), so a sample depends only on (seed, i): the same in
any DataLoader worker, on any rank, after any restart.
`FreshPlateSampler` hands every epoch a new block of indices, so no plate is seen twice; a stage of E epochs
of N samples sees E x N different plates. Rendering takes about 9 ms a plate on one core (about 110 plates/s),
so one loader worker keeps up with the generator stages on a CPU; the OCR stage on a CPU trains faster than
that and waits for plates (give it `data.loader_workers`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from lpasrn.data.plates import LR_FRAMES
from lpasrn.data.synth import SynthConfig, plan_track, render_track


def _to_tensor(image) -> torch.Tensor:
    array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)


class SyntheticPlateDataset(Dataset):
    """(LR, HR) pairs of freshly rendered plates, keyed like `PlateSRDataset` samples.

    `len()` is the number of samples an epoch draws; any non-negative index renders (see `FreshPlateSampler`).
    """

    def __init__(
        self,
        samples_per_epoch: int,
        lr_size: tuple[int, int],
        scale: int,
        seed: int,
        layout: str = "mixed",
        style: str = "standard",
        generator_frames: int = 1,
    ):
        self.samples_per_epoch = samples_per_epoch
        self.generator_frames = generator_frames  # > 1: render that many frames, stacked as `lr_frames`
        self.cfg = SynthConfig(
            tracks=1,
            layout=layout,
            seed=seed,
            hr_size=(lr_size[0] * scale, lr_size[1] * scale),
            scale=scale,
            frames=generator_frames,
            style=style,
        )

    def __len__(self) -> int:
        return self.samples_per_epoch

    def __getitem__(self, index: int) -> dict[str, Any]:
        plan, rng = plan_track(self.cfg, int(index))
        hr_frames, lr_frames, _ = render_track(plan.text, plan.layout, self.cfg, rng)
        sample = {
            "lr": _to_tensor(lr_frames[0]),
            "hr": _to_tensor(hr_frames[0]),
            "text": plan.text,
            "layout": plan.layout,
            "track_id": f"synthetic/{index}",
            "frame": 1,
            "index": int(index),
        }
        if self.generator_frames > 1:
            sample[LR_FRAMES] = torch.stack([_to_tensor(frame) for frame in lr_frames])
        return sample


class FreshPlateSampler(Sampler[int]):
    """Epoch e draws indices [e*N, (e+1)*N), split between ranks without overlap (rank r takes every
    world_size-th); `set_epoch` moves to the next block, as `DistributedSampler.set_epoch` reshuffles."""

    def __init__(self, samples_per_epoch: int, world_size: int = 1, rank: int = 0):
        self.samples_per_epoch, self.world_size, self.rank = samples_per_epoch, world_size, rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(range(self.rank, self.samples_per_epoch, self.world_size))

    def __iter__(self) -> Iterator[int]:
        start = self.epoch * self.samples_per_epoch
        return iter(range(start + self.rank, start + self.samples_per_epoch, self.world_size))
