"""`data.cache_decoded`: frame pairs decoded once serve the reader's exact items from memory."""

from __future__ import annotations

import pickle
import shutil

import pytest
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, default_collate

from lpasrn.config import DataConfig, load_lpasrn_config
from lpasrn.data.decoded import DecodedBatch, DecodedPlates, collate
from lpasrn.data.hard_mining import CurriculumSampler
from lpasrn.data.plates import LR_FRAMES, PlateSRDataset, scan_tracks
from lpasrn.training.session import LocalSession
from lpasrn.training.stage_data import build_stage_data
from lpasrn.training.stages import stage_table
from tests.conftest import tiny_overrides, write_track


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
    batch = next(iter(DataLoader(decoded, batch_size=4, collate_fn=collate)))
    assert batch["lr"].shape == (4, 3, 16, 48) and batch["index"].tolist() == [0, 1, 2, 3]


def test_decoding_once_is_the_default():
    assert DataConfig().cache_decoded is True


class PerSample(Dataset):
    """The same items without `__getitems__`: what the DataLoader's default path (sample by sample) gives."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        return self.dataset[index]


def assert_same_batch(got: dict, want: dict) -> None:
    """Key by key, bit for bit: same keys in the same order, same types, dtypes, shapes, strides and bytes."""
    assert type(got) is type(want) is dict and list(got) == list(want)
    for key, value in want.items():
        assert type(got[key]) is type(value), key
        if isinstance(value, torch.Tensor):
            assert (got[key].dtype, got[key].shape, got[key].stride()) == (value.dtype, value.shape, value.stride())
            assert torch.equal(got[key].contiguous().view(torch.uint8), value.contiguous().view(torch.uint8)), key
        else:
            assert got[key] == value and all(type(a) is type(b) for a, b in zip(got[key], value, strict=True)), key


@pytest.mark.parametrize("frames", [1, 3])  # 3: a multi-frame generator's `lr_frames` stack too
def test_a_batch_fetched_at_once_is_default_collation_of_its_items(plate_root, frames):
    decoded = DecodedPlates(PlateSRDataset(scan_tracks(plate_root).tracks, (16, 48), 2, frames))
    for indices in ([0, 1, 2, 3], [17, 3, 3, 29, 0], [5]):  # unsorted and repeated, as the curriculum draws them
        want = default_collate([decoded[index] for index in indices])
        assert_same_batch(collate(decoded.__getitems__(indices)), want)
    assert set(want) == {"lr", "hr", "text", "layout", "track_id", "frame", "index"} | (
        {LR_FRAMES} if frames > 1 else set()
    )
    assert isinstance(want["text"], list) and want["index"].dtype == want["frame"].dtype == torch.int64


@pytest.mark.parametrize("workers", [0, 1])
def test_loaders_over_samplers_give_the_per_sample_batches(plate_root, workers):
    decoded = DecodedPlates(PlateSRDataset(scan_tracks(plate_root).tracks, (16, 48), 2))
    curriculum = CurriculumSampler(len(decoded), total_epochs=3, num_replicas=2, rank=1, seed=4)
    curriculum.set_epoch(2)  # draws with replacement, leaning on the weights
    curriculum.set_weights(torch.linspace(0, 1, len(decoded)))
    for sampler in (DistributedSampler(decoded, num_replicas=2, rank=1, shuffle=True, seed=3), curriculum, None):
        want = list(DataLoader(PerSample(decoded), batch_size=4, sampler=sampler))
        got = list(DataLoader(decoded, batch_size=4, sampler=sampler, collate_fn=collate, num_workers=workers))
        assert len(got) == len(want) > 1
        for got_batch, want_batch in zip(got, want, strict=True):
            assert_same_batch(got_batch, want_batch)


def test_the_collate_function_collates_other_datasets_as_default_and_a_plain_loader_fails_clearly(plate_root):
    reader = PlateSRDataset(scan_tracks(plate_root).tracks, (16, 48), 2)
    assert_same_batch(collate([reader[0], reader[7]]), default_collate([reader[0], reader[7]]))
    with pytest.raises(TypeError, match="collate_fn=collate"):
        next(iter(DataLoader(DecodedPlates(reader), batch_size=4)))


def test_a_worker_sends_its_batch_as_uint8_bytes_that_arrive_as_the_finished_batch(plate_root):
    decoded = DecodedPlates(PlateSRDataset(scan_tracks(plate_root).tracks, (16, 48), 2))
    batch = decoded.__getitems__(list(range(8)))
    sent = pickle.dumps(batch)
    assert 8 * (16 * 48 + 32 * 96) * 3 < len(sent) < 8 * (16 * 48 + 32 * 96) * 3 * 1.1  # uint8, not 4x as floats
    assert_same_batch(pickle.loads(sent), collate(batch))


def test_every_stages_loaders_give_the_same_batches_with_a_worker_as_without(synth_plates, tmp_path):
    def batches(workers: int, stage: int) -> tuple[list[dict], list[dict]]:
        cfg = load_lpasrn_config(
            "lp_asrn_tiny", tiny_overrides(synth_plates, tmp_path, "w") + [f"data.loader_workers={workers}"]
        )
        data = build_stage_data(cfg, stage_table(cfg)[stage], LocalSession(tmp_path, show_progress=False))
        assert isinstance(data.train_set, DecodedPlates)
        data.train_sampler.set_epoch(1)
        return list(data.train_loader), list(data.val_loader)

    cfg = load_lpasrn_config("lp_asrn_tiny", tiny_overrides(synth_plates, tmp_path, "w"))
    assert any(stage.hard_mining for stage in stage_table(cfg))  # the curriculum's draws too
    for stage in range(len(stage_table(cfg))):
        for got, want in zip(batches(1, stage), batches(0, stage), strict=True):
            assert len(got) == len(want) > 0
            for got_batch, want_batch in zip(got, want, strict=True):
                assert_same_batch(got_batch, want_batch)


def test_images_become_float_as_torch_makes_them_for_every_uint8_value():
    values = torch.arange(256, dtype=torch.uint8).view(1, 256)
    made = collate(DecodedBatch(lr=values))["lr"]
    assert made.dtype == torch.float32 and torch.equal(
        made.view(torch.int32), values.float().div_(255.0).view(torch.int32)
    )
