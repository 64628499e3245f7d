"""Loader workers where they pay: none for a split served from memory, two where frames are decoded or rendered."""

from __future__ import annotations

import torch

from lpasrn.config import DataConfig
from lpasrn.data.decoded import DecodedPlates
from lpasrn.training.stage_data import DEFAULT_LOADER_WORKERS, loader_workers


class Pairs(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> dict:
        return {"lr": torch.zeros(3, 2, 2), "hr": torch.ones(3, 4, 4), "text": "ABC1D23", "index": index}


def test_unset_workers_follow_the_dataset_and_a_set_value_is_kept():
    decoded, from_files = DecodedPlates(Pairs()), Pairs()
    assert loader_workers(DataConfig(), decoded) == 0
    assert loader_workers(DataConfig(), from_files) == DEFAULT_LOADER_WORKERS == 2
    assert loader_workers(DataConfig(loader_workers=3), decoded) == 3
    assert loader_workers(DataConfig(loader_workers=0), from_files) == 0
