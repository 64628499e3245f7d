"""The contact sheet reads synthetic and real-format (.jpg) datasets and fails with one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from experiments.errors import UserError
from lpasrn.data.preview import PAD, TITLE_HEIGHT, make_contact_sheet
from lpasrn.data.synth import SynthConfig, render_dataset
from tests.conftest import write_track


def _expected_height(rows: int, hr_height: int = 32, scale_up: int = 3) -> int:
    return TITLE_HEIGHT + rows * (hr_height * scale_up + PAD) + PAD


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("preview") / "plates"
    render_dataset(root, SynthConfig(tracks=3, frames=2))
    return root


@pytest.mark.parametrize("max_tracks, rows", [(24, 3), (2, 2)])
def test_sheet_has_one_row_per_track(synthetic: Path, tmp_path: Path, max_tracks: int, rows: int) -> None:
    out = make_contact_sheet(synthetic, tmp_path / "sheet.png", max_tracks=max_tracks, frame=2)
    with Image.open(out) as sheet:
        assert sheet.format == "PNG" and sheet.mode == "RGB"
        assert sheet.height == _expected_height(rows)
        assert sheet.width >= 4 * PAD + 2 * 96 * 3
        assert sheet.getpixel((0, 0)) == (255, 255, 255)
    assert [path.name for path in tmp_path.iterdir()] == ["sheet.png"]


def test_real_format_jpg_tracks(tmp_path: Path) -> None:
    root = tmp_path / "real"
    write_track(root, "Scenario-A/Brazilian/track_00001", "ABC1234", "Brazilian", frames=1, ext="jpg")
    write_track(root, "Scenario-B/Mercosur/track_00002", "BRA2E19", "Mercosur", frames=1, ext="jpg")
    out = make_contact_sheet(root, tmp_path / "nested" / "sheet.png", scale_up=2)
    with Image.open(out) as sheet:
        assert sheet.height == _expected_height(2, scale_up=2)


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="dataset folder not found"):
        make_contact_sheet(tmp_path / "nope", tmp_path / "sheet.png")


def test_root_without_tracks(tmp_path: Path) -> None:
    (tmp_path / "empty" / "Scenario-A").mkdir(parents=True)
    with pytest.raises(UserError, match=r"no tracks found \(expected <scenario>/<layout>/<track>/annotations.json\)"):
        make_contact_sheet(tmp_path / "empty", tmp_path / "sheet.png")
    assert not (tmp_path / "sheet.png").exists()


def test_corrupt_image_names_the_file(tmp_path: Path) -> None:
    folder = write_track(tmp_path / "bad", "Scenario-A/Brazilian/track_00001", frames=1)
    (folder / "hr-001.png").write_bytes(b"this is not a png")
    with pytest.raises(UserError, match="cannot read image") as info:
        make_contact_sheet(tmp_path / "bad", tmp_path / "sheet.png")
    assert str(folder / "hr-001.png") in str(info.value)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "sheet.png").exists()
