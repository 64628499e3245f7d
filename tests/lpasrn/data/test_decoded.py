"""`data.cache_decoded`: frame pairs decoded once serve the reader's exact items from memory."""

from __future__ import annotations

import shutil

import torch
from torch.utils.data import DataLoader

from lpasrn.config import DataConfig
from lpasrn.data.decoded import DecodedPlates
from lpasrn.data.plates import PlateSRDataset, scan_tracks
from tests.conftest import write_track


def test_items_are_the_readers_bit_for_bit_and_need_no_files_afterwards(plate_root, tmp_path):
    write_track(plate_root, "Scenario-C/Brazilian/odd_size", lr_size=(20, 60), seed=9)  # resized on reading
    reader = PlateSRDataset(scan_tracks(plate_root).tracks, (16, 48), 2)
    expected = [reader[index] for index in range(len(reader))]
    decoded = DecodedPlates(reader, threads=2)
    assert decoded.images["lr"].dtype == torch.uint8 and decoded.images["hr"].shape == (len(reader), 3, 32, 96)
    shutil.rmtree(plate_root)  # nothing is read from disk again
    assert len(decoded) == len(reader)
    for index, want in enumerate(expected):
        got = decoded[index]
        assert got.keys() == want.keys()
        assert torch.equal(got["lr"], want["lr"]) and torch.equal(got["hr"], want["hr"])
        assert all(got[key] == want[key] for key in want if key not in ("lr", "hr"))
    batch = next(iter(DataLoader(decoded, batch_size=4)))
    assert batch["lr"].shape == (4, 3, 16, 48) and batch["index"].tolist() == [0, 1, 2, 3]


def test_decoding_once_is_the_default():
    assert DataConfig().cache_decoded is True
