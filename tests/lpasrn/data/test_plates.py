"""The plate reader: dataset layout, items, splits and every bad-input path."""

from __future__ import annotations

import json

import pytest
import torch

from experiments.errors import UserError
from lpasrn.data.charset import CHARSET, decode, encode, layout_problem, letter_slot_mask
from lpasrn.data.plates import PlateSRDataset, read_split_file, scan_tracks, split_by_ratio
from lpasrn.data.splits import build_splits
from tests.conftest import write_track


def test_charset_and_layouts():
    assert len(CHARSET) == 36 and decode(encode("ABC1D23")) == "ABC1D23"
    assert layout_problem("ABC1234", "Brazilian") is None
    assert layout_problem("ABC1D23", "mercosur") is None
    assert "position 5 must be a letter" in layout_problem("ABC1234", "Mercosur")
    assert letter_slot_mask("Mercosur") == [True, True, True, False, True, False, False]


def test_scan_finds_every_track_with_paired_frames(plate_root):
    tracks = scan_tracks(plate_root).tracks
    assert [t.track_id for t in tracks][:2] == ["Scenario-A/Brazilian/track_00001", "Scenario-A/Brazilian/track_00002"]
    assert len(tracks) == 6 and all(t.num_frames == 5 for t in tracks)
    track = tracks[2]
    assert (track.text, track.layout) == ("BRA2E19", "Mercosur")
    assert [p.name for p in track.lr_paths] == [f"lr-{n:03d}.png" for n in range(1, 6)]


def test_items_carry_tensors_text_layout_track_frame_and_stable_index(plate_root):
    dataset = PlateSRDataset(scan_tracks(plate_root).tracks, lr_size=(16, 48), scale=2)
    assert len(dataset) == 30
    item = dataset[7]
    assert item["lr"].shape == (3, 16, 48) and item["hr"].shape == (3, 32, 96)
    assert item["lr"].dtype == torch.float32 and 0.0 <= item["lr"].min() and item["hr"].max() <= 1.0
    assert (item["text"], item["layout"], item["track_id"], item["frame"], item["index"]) == (
        "XYZ9876",
        "Brazilian",
        "Scenario-A/Brazilian/track_00002",
        3,
        7,
    )
    again = PlateSRDataset(scan_tracks(plate_root).tracks, lr_size=(16, 48), scale=2)[7]
    assert torch.equal(item["hr"], again["hr"])


def test_images_of_other_sizes_and_jpg_are_resized(tmp_path):
    write_track(tmp_path, "S/Brazilian/t1", lr_size=(20, 70), ext="jpg")
    item = PlateSRDataset(scan_tracks(tmp_path).tracks, lr_size=(16, 48), scale=2)[0]
    assert item["lr"].shape == (3, 16, 48) and item["hr"].shape == (3, 32, 96)


def test_split_file_assigns_tracks(plate_root, tmp_path):
    tracks = scan_tracks(plate_root).tracks
    split_file = tmp_path / "split.txt"
    split_file.write_text(
        "# comment\nScenario-A/Brazilian/track_00001 train\nScenario-A/Mercosur/track_00003;val\n"
        "test,Scenario-B/Mercosur/track_00004\n"
    )
    splits = read_split_file(split_file, tracks)
    assert [t.track_id for t in splits["train"]] == ["Scenario-A/Brazilian/track_00001"]
    assert [t.track_id for t in splits["val"]] == ["Scenario-A/Mercosur/track_00003"]
    assert [t.track_id for t in splits["test"]] == ["Scenario-B/Mercosur/track_00004"]


@pytest.mark.parametrize(
    "line, expected",
    [
        ("Scenario-A/Brazilian/track_00001 holdout", "split.txt:1: unknown split 'holdout'"),
        ("Scenario-Z/none train", "split.txt:1: track 'Scenario-Z/none' not found"),
        ("just-one-field", "split.txt:1: expected '<track path> <train|val|test>'"),
    ],
)
def test_bad_split_file_lines_name_file_and_line(plate_root, tmp_path, line, expected):
    (tmp_path / "split.txt").write_text(line + "\n")
    with pytest.raises(UserError, match=expected):
        read_split_file(tmp_path / "split.txt", scan_tracks(plate_root).tracks)


def test_ratio_split_is_seeded_and_keeps_a_plate_in_one_split(plate_root):
    write_track(plate_root, "Scenario-C/Brazilian/track_00007", text="ABC1234")  # same plate as track 1
    tracks = scan_tracks(plate_root).tracks
    first = split_by_ratio(tracks, (0.5, 0.25, 0.25), seed=3)
    assert first == split_by_ratio(tracks, (0.5, 0.25, 0.25), seed=3)
    assert sum(len(v) for v in first.values()) == len(tracks)
    split_of = {t.track_id: name for name, ts in first.items() for t in ts}
    assert split_of["Scenario-A/Brazilian/track_00001"] == split_of["Scenario-C/Brazilian/track_00007"]


def _annotation(root, track="Scenario-A/Brazilian/track_00001"):
    return root / track / "annotations.json"


@pytest.mark.parametrize(
    "content, expected",
    [
        ('{"plate_text": "ABC1234", "plate_layout": "Brazilian"', "invalid JSON at line 1"),
        ('{"plate_layout": "Brazilian"}', "missing key 'plate_text'"),
        ('{"plate_text": "ABC1234", "plate_layout": "Argentinian"}', "plate_layout: unknown plate layout"),
        ('{"plate_text": "ABC1234", "plate_layout": "Mercosur"}', "position 5 must be a letter"),
        ('{"plate_text": "AB1234", "plate_layout": "Brazilian"}', "has 6 characters"),
    ],
)
def test_bad_annotations_name_the_file(plate_root, content, expected):
    _annotation(plate_root).write_text(content)
    with pytest.raises(UserError) as err:
        scan_tracks(plate_root)
    assert str(_annotation(plate_root)) in str(err.value) and expected in str(err.value)


def test_skip_bad_counts_and_skips_bad_tracks(plate_root):
    _annotation(plate_root).write_text('{"plate_text": "ABC1234", "plate_layout": "Mercosur"}')
    (plate_root / "Scenario-A/Mercosur/track_00003/hr-002.png").unlink()
    result = scan_tracks(plate_root, skip_bad=True)
    assert len(result.tracks) == 4
    assert set(result.skipped) == {"Scenario-A/Brazilian/track_00001", "Scenario-A/Mercosur/track_00003"}


def test_skip_bad_drops_skipped_tracks_listed_in_the_split_file(plate_root, tmp_path):
    _annotation(plate_root).write_text("not json")
    (tmp_path / "split.txt").write_text(
        "Scenario-A/Brazilian/track_00001 train\nScenario-A/Brazilian/track_00002 val\n"
    )
    splits, skipped = build_splits(plate_root, tmp_path / "split.txt", skip_bad=True)
    assert list(skipped) == ["Scenario-A/Brazilian/track_00001"]
    assert [t.track_id for t in splits["val"]] == ["Scenario-A/Brazilian/track_00002"] and not splits["train"]


def test_missing_frames_name_the_track_and_frame(plate_root):
    track = plate_root / "Scenario-B/Mercosur/track_00004"
    (track / "lr-003.png").unlink()
    with pytest.raises(UserError, match=r"track_00004: missing frame lr-003 \(hr-003 exists\)"):
        scan_tracks(plate_root)
    (track / "hr-003.png").unlink()
    with pytest.raises(UserError, match=r"track_00004: missing frame lr-003/hr-003"):
        scan_tracks(plate_root)


def test_corrupt_and_vanished_images_name_the_file(plate_root):
    dataset = PlateSRDataset(scan_tracks(plate_root).tracks, lr_size=(16, 48), scale=2)
    corrupt = plate_root / "Scenario-A/Brazilian/track_00001/hr-001.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(UserError, match=rf"{corrupt}: cannot read image"):
        dataset[0]
    gone = plate_root / "Scenario-A/Brazilian/track_00001/lr-002.png"
    gone.unlink()
    with pytest.raises(UserError, match=rf"{gone}: image file not found"):
        dataset[1]


def test_missing_root_and_empty_root(tmp_path):
    with pytest.raises(UserError, match="dataset folder not found"):
        scan_tracks(tmp_path / "nothing")
    with pytest.raises(UserError, match="no tracks found"):
        scan_tracks(tmp_path)


def test_annotations_are_read_as_written(tmp_path):
    folder = write_track(tmp_path, "S/Mercosur/t", text="abc1d23", layout="mercosur")
    data = json.loads((folder / "annotations.json").read_text())
    track = scan_tracks(tmp_path).tracks[0]
    assert (track.text, track.layout, track.corners) == ("ABC1D23", "Mercosur", data["corners"])


def test_build_splits_uses_the_dataset_own_split_file_when_none_is_given(plate_root):
    (plate_root / "split.txt").write_text(
        "Scenario-A/Brazilian/track_00001 test\nScenario-B/Mercosur/track_00004 val\n"
    )
    splits, _ = build_splits(plate_root)
    assert {name: [t.track_id for t in tracks] for name, tracks in splits.items()} == {
        "train": [],
        "val": ["Scenario-B/Mercosur/track_00004"],
        "test": ["Scenario-A/Brazilian/track_00001"],
    }
