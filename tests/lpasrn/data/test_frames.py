"""Frames of any mode load as 8-bit RGB; sizes that look like data errors are warned about and counted."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lpasrn.cli import run as lpasrn_run
from lpasrn.data.frames import frame_size_problem
from lpasrn.data.plates import PlateSRDataset, load_rgb, scan_tracks

ODD_TRACK = "Scenario-A/Brazilian/track_00001"


def test_a_16_bit_grey_png_keeps_its_values(tmp_path: Path) -> None:
    ramp = np.linspace(0, 65535, 32 * 96).reshape(32, 96).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "hr-001.png")
    assert Image.open(tmp_path / "hr-001.png").mode.startswith("I")
    image = load_rgb(tmp_path / "hr-001.png")
    expected = ramp.astype(np.float64) / 65535.0
    assert image.shape == (3, 32, 96)
    assert np.abs(image[0].numpy() - expected).max() < 1 / 255 + 1e-6


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("grey.png", lambda: Image.new("L", (5, 7), 90)),
        ("rgba.png", lambda: Image.new("RGBA", (300, 10), (10, 20, 30, 128))),
        ("cmyk.jpg", lambda: Image.new("CMYK", (48, 16), (0, 255, 255, 0))),
    ],
)
def test_every_mode_loads_as_rgb_at_the_requested_size(tmp_path: Path, name: str, make) -> None:
    make().save(tmp_path / name)
    assert load_rgb(tmp_path / name, (16, 48)).shape == (3, 16, 48)


@pytest.mark.parametrize(
    ("lr", "hr", "expected"),
    [
        ((48, 16), (96, 32), None),
        ((70, 22), (140, 44), None),  # real crops vary around the plate's 3:1
        ((96, 32), (48, 16), "LR frame 32x96 is larger than its HR frame 16x48"),
        ((300, 10), (600, 20), "LR frame 10x300 (height x width) is far from a plate's shape"),
        ((48, 16), (5, 7), "LR frame 16x48 is larger than its HR frame 7x5"),
        ((4, 3), (8, 6), "LR frame 3x4 (height x width) is far from a plate's shape"),
    ],
)
def test_frame_sizes_that_look_like_data_errors(lr, hr, expected) -> None:
    problem = frame_size_problem(lr, hr)
    assert problem is None if expected is None else expected in problem


def make_odd_track(root: Path) -> Path:
    """Track 1 of `plate_root` with RGBA 300x10 LR frames: resized fine, but no plate looks like that."""
    folder = root / ODD_TRACK
    for lr in folder.glob("lr-*.png"):
        Image.new("RGBA", (300, 10), (10, 20, 30, 255)).save(lr)
    return folder


def test_odd_frames_are_warned_about_once_per_track_with_its_path(plate_root, caplog) -> None:
    folder = make_odd_track(plate_root)
    dataset = PlateSRDataset(scan_tracks(plate_root).tracks, lr_size=(16, 48), scale=2)
    with caplog.at_level(logging.WARNING, logger="lpasrn"):
        items = [dataset[index] for index in range(len(dataset))]
        dataset[0]
    assert all(item["lr"].shape == (3, 16, 48) for item in items)
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{folder}: frame 001: LR frame 10x300")


def test_check_data_counts_the_tracks_with_odd_frames(plate_root, capsys) -> None:
    folder = make_odd_track(plate_root)
    assert lpasrn_run(["check-data", str(plate_root)]) == 0
    captured = capsys.readouterr()
    assert "1 tracks with odd frame sizes" in captured.out
    assert f"odd frame sizes in {folder}: lr-001.png/hr-001.png: LR frame 10x300" in captured.err
