"""Synthesiser -> reader round trip: what `lpasrn synth` writes is exactly what the reader expects."""

from __future__ import annotations

import pytest
import torch

from lpasrn.cli import run as lpasrn_run
from lpasrn.data.charset import layout_problem
from lpasrn.data.plates import PlateSRDataset
from lpasrn.data.splits import build_splits
from lpasrn.data.synth import SynthConfig, render_dataset


@pytest.mark.parametrize("layout, expected", [("brazilian", {"Brazilian"}), ("mercosur", {"Mercosur"})])
def test_each_layout_reads_back(tmp_path, layout, expected):
    root = tmp_path / layout
    render_dataset(root, SynthConfig(tracks=6, layout=layout, seed=1))
    splits, skipped = build_splits(root, root / "split.txt")
    tracks = [t for ts in splits.values() for t in ts]
    assert not skipped and len(tracks) == 6
    assert {t.layout for t in tracks} == expected
    assert all(layout_problem(t.text, t.layout) is None and t.num_frames == 5 for t in tracks)
    item = PlateSRDataset(tracks, lr_size=(16, 48), scale=2)[0]
    assert item["lr"].shape == (3, 16, 48) and item["hr"].shape == (3, 32, 96)


def test_lr_is_a_degraded_copy_of_its_hr(tmp_path):
    root = tmp_path / "plates"
    render_dataset(root, SynthConfig(tracks=2, seed=4))
    splits, _ = build_splits(root, root / "split.txt")
    dataset = PlateSRDataset([t for ts in splits.values() for t in ts], lr_size=(16, 48), scale=2)
    item = dataset[0]
    down = torch.nn.functional.interpolate(item["hr"][None], size=(16, 48), mode="area")[0]
    other = dataset[len(dataset) - 1]["lr"]
    assert (down - item["lr"]).abs().mean() < (down - other).abs().mean()


def test_cli_synth_then_check_data_then_preview(tmp_path, capsys):
    root = tmp_path / "plates"
    assert lpasrn_run(["synth", "--out", str(root), "--tracks", "10", "--layout", "mixed", "--seed", "0"]) == 0
    assert "wrote 10 tracks" in capsys.readouterr().out
    assert lpasrn_run(["check-data", str(root), "--split-file", str(root / "split.txt"), "--verify-images"]) == 0
    assert "verified 100 images" in capsys.readouterr().out
    assert lpasrn_run(["preview", str(root), "--out", str(tmp_path / "sheet.png")]) == 0
    assert (tmp_path / "sheet.png").stat().st_size > 0
    assert lpasrn_run(["synth", "--out", str(root), "--tracks", "0"]) == 2
