"""The heldout plate style: the same tracks rendered unlike training, deterministically, and still legible."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from experiments.errors import UserError
from lpasrn.cli import run as lpasrn_run
from lpasrn.data import synth
from lpasrn.data.splits import build_splits
from lpasrn.data.synth import SynthConfig, plan_track, render_dataset


def _files(root: Path) -> dict[str, bytes]:
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image, dtype=np.float32)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Standard and heldout datasets of the same seed."""
    base = tmp_path_factory.mktemp("styles")
    render_dataset(base / "standard", SynthConfig(tracks=3, seed=11, frames=2))
    render_dataset(base / "heldout", SynthConfig(tracks=3, seed=11, frames=2, style="heldout"))
    return base / "standard", base / "heldout"


def test_heldout_is_deterministic_per_seed(tmp_path: Path, pair: tuple[Path, Path]) -> None:
    again = _files(render_dataset(tmp_path / "a", SynthConfig(tracks=3, seed=11, frames=2, style="heldout")).root)
    other = _files(render_dataset(tmp_path / "b", SynthConfig(tracks=3, seed=12, frames=2, style="heldout")).root)
    assert again == _files(pair[1])
    assert again != other


def test_heldout_renders_the_same_tracks_with_other_pixels(pair: tuple[Path, Path]) -> None:
    standard, heldout = pair
    standard_files, heldout_files = _files(standard), _files(heldout)
    assert set(standard_files) == set(heldout_files)  # same folders, texts, layouts and file names
    split_lines = [(root / "split.txt").read_text(encoding="utf-8").splitlines()[1:] for root in pair]
    assert split_lines[0] == split_lines[1]
    for name in (name for name in standard_files if name.endswith(".png")):
        a, b = _pixels(standard / name), _pixels(heldout / name)
        assert a.shape == b.shape and np.abs(a - b).mean() > 5, name
    for name in (name for name in standard_files if name.endswith("annotations.json")):
        plain, styled = json.loads(standard_files[name]), json.loads(heldout_files[name])
        assert "style" not in plain and styled.pop("style") == "heldout"
        assert (plain["plate_text"], plain["plate_layout"]) == (styled["plate_text"], styled["plate_layout"])


def test_the_reader_takes_a_heldout_dataset(pair: tuple[Path, Path]) -> None:
    splits, skipped = build_splits(pair[1], None, (0.8, 0.1, 0.1), 0)
    assert not skipped and sum(len(tracks) for tracks in splits.values()) == 3


def test_each_style_has_its_own_typeface_and_glyphs() -> None:
    assert synth.plate_font_path("standard").name != synth.plate_font_path("heldout").name
    # Standard first, then heldout, then standard again: a cache keyed without the style would mix them.
    masks = [np.asarray(synth._glyph_mask("A", 64, 36, style)) for style in ("standard", "heldout", "standard")]
    assert np.array_equal(masks[0], masks[2])
    assert masks[0].shape != masks[1].shape or np.abs(masks[0].astype(float) - masks[1]).mean() > 10
    words = [np.asarray(synth._glyph_source("ABC1D23", style)) for style in ("standard", "heldout")]
    assert words[0].shape != words[1].shape


def test_heldout_plate_art_differs_from_standard() -> None:
    for layout, text in (("Brazilian", "ABC1234"), ("Mercosur", "ABC1D23")):
        plates = [
            np.asarray(synth.render_plate(text, layout, (32, 96), np.random.default_rng(0), style), float)
            for style in ("standard", "heldout")
        ]
        assert np.abs(plates[0] - plates[1]).mean() > 10


def test_heldout_lr_frames_have_the_lr_size() -> None:
    cfg = SynthConfig(tracks=1, hr_size=(48, 144), scale=3, frames=2, style="heldout")
    plan, rng = plan_track(cfg, 0)
    hr_frames, lr_frames, _ = synth.render_track(plan.text, plan.layout, cfg, rng)
    assert [frame.size for frame in hr_frames] == [(144, 48)] * 2
    assert [(frame.mode, frame.size) for frame in lr_frames] == [("RGB", (48, 16))] * 2


@pytest.mark.parametrize("length", [1.0, 2.6, 5.0])
@pytest.mark.parametrize("angle", [0.0, 0.7, np.pi / 2, 2.5])
def test_motion_kernel_is_a_centred_normalised_line(length: float, angle: float) -> None:
    kernel = synth._motion_kernel(length, angle)
    centre = kernel.shape[0] // 2
    rows, cols = np.indices(kernel.shape)
    assert kernel.shape[0] == kernel.shape[1] and kernel.shape[0] % 2 == 1
    assert abs(kernel.sum() - 1) < 1e-5 and kernel.min() >= 0
    assert abs((kernel * rows).sum() - centre) < 1e-4 and abs((kernel * cols).sum() - centre) < 1e-4
    along = (cols - centre) * np.cos(angle) + (rows - centre) * np.sin(angle)
    across = (rows - centre) * np.cos(angle) - (cols - centre) * np.sin(angle)
    # A line of length L has an RMS half-length of L / sqrt(12); bilinear splatting widens it by under half a pixel.
    assert length / np.sqrt(12) < np.sqrt((kernel * along**2).sum()) < length / np.sqrt(12) + 0.35
    assert np.sqrt((kernel * across**2).sum()) < 0.45


def test_convolve_with_a_delta_kernel_changes_nothing() -> None:
    pixels = np.random.default_rng(0).uniform(0, 255, (8, 12, 3)).astype(np.float32)
    delta = np.zeros((5, 5), dtype=np.float32)
    delta[2, 2] = 1
    np.testing.assert_array_equal(synth._convolve(pixels, delta), pixels)


def test_a_bad_style_is_a_user_error() -> None:
    with pytest.raises(UserError, match="--style must be one of standard, heldout, varied") as info:
        SynthConfig(tracks=1, style="fancy")
    assert "\n" not in str(info.value)
    assert SynthConfig(tracks=1, style=" HeldOut ").style == "heldout"


def test_a_bad_style_on_the_command_line_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert lpasrn_run(["synth", "--out", str(tmp_path / "x"), "--tracks", "1", "--style", "fancy"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--style" in err
    assert not (tmp_path / "x").exists()


def test_the_command_line_writes_a_heldout_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "heldout"
    assert lpasrn_run(["synth", "--out", str(out), "--tracks", "2", "--frames", "1", "--style", "heldout"]) == 0
    assert "wrote 2 tracks" in capsys.readouterr().out
    assert "heldout style" in (out / "split.txt").read_text(encoding="utf-8").splitlines()[0]
    assert all(
        json.loads(path.read_text(encoding="utf-8"))["style"] == "heldout"
        for path in out.glob("*/*/*/annotations.json")
    )


def test_a_test_only_set_has_no_split_file_and_is_scored_whole(tmp_path: Path) -> None:
    summary = render_dataset(tmp_path / "ho", SynthConfig(tracks=4, seed=3, style="heldout", test_only=True))
    assert not (tmp_path / "ho" / "split.txt").exists() and summary.splits == {"train": 0, "val": 0, "test": 4}
