"""The plate synthesiser writes the real dataset layout, deterministically and all-or-nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from experiments.errors import UserError
from lpasrn.data import synth
from lpasrn.data.charset import layout_problem
from lpasrn.data.synth import SynthConfig, plan_track, random_plate_text, render_dataset, render_plate, split_counts

TRACK_RE = re.compile(r"^Scenario-[AB]/(Brazilian|Mercosur)/track_\d{5}$")


def _files(root: Path) -> dict[str, bytes]:
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def _track_dirs(root: Path) -> list[Path]:
    return sorted(path.parent for path in root.glob("*/*/*/annotations.json"))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, synth.SynthSummary]:
    root = tmp_path_factory.mktemp("synth") / "plates"
    return root, render_dataset(root, SynthConfig(tracks=10, seed=3))


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    first = _files(render_dataset(tmp_path / "a", SynthConfig(tracks=3, seed=7)).root)
    second = _files(render_dataset(tmp_path / "b", SynthConfig(tracks=3, seed=7)).root)
    other = _files(render_dataset(tmp_path / "c", SynthConfig(tracks=3, seed=8)).root)
    assert first == second
    assert len(first) == 3 * 11 + 1
    assert first != other


def test_tracks_do_not_depend_on_how_many_are_rendered() -> None:
    small, large = SynthConfig(tracks=2, seed=5), SynthConfig(tracks=50, seed=5)
    assert [plan_track(small, i)[0] for i in range(2)] == [plan_track(large, i)[0] for i in range(2)]


def test_tree_layout_and_file_names(dataset: tuple[Path, synth.SynthSummary]) -> None:
    root, summary = dataset
    tracks = _track_dirs(root)
    ids = [track.relative_to(root).as_posix() for track in tracks]
    assert all(TRACK_RE.match(track_id) for track_id in ids), ids
    assert sorted(int(track_id[-5:]) for track_id in ids) == list(range(1, 11))
    expected = {f"{side}-{n:03d}.png" for side in ("hr", "lr") for n in range(1, 6)} | {"annotations.json"}
    assert all({path.name for path in track.iterdir()} == expected for track in tracks)
    assert (root / "split.txt").is_file()
    assert sorted(path.name for path in root.parent.iterdir()) == ["plates"]  # no staging folder left behind
    assert summary.tracks == 10 and summary.images == 100 and summary.root == root


def test_annotations_match_folder_layout_and_image_geometry(dataset: tuple[Path, synth.SynthSummary]) -> None:
    root, _ = dataset
    for track in _track_dirs(root):
        raw = (track / "annotations.json").read_text(encoding="utf-8")
        data = json.loads(raw)
        assert raw == json.dumps(data, indent=2, sort_keys=True) + "\n"
        assert set(data) == {"plate_text", "plate_layout", "corners"}
        assert data["plate_layout"] == track.parent.name
        assert layout_problem(data["plate_text"], data["plate_layout"]) is None
        assert set(data["corners"]) == {f"{side}-{n:03d}.png" for side in ("hr", "lr") for n in range(1, 6)}
        for n in range(1, 6):
            hr, lr = np.array(data["corners"][f"hr-{n:03d}.png"]), np.array(data["corners"][f"lr-{n:03d}.png"])
            assert hr.shape == (4, 2) and np.allclose(hr, np.round(hr, 2))
            np.testing.assert_allclose(lr, hr / 2, atol=0.011)
            (tl, tr, br, bl) = hr
            assert tl[0] < tr[0] and bl[0] < br[0] and tl[1] < bl[1] and tr[1] < br[1]
            assert hr[:, 0].min() > -2 and hr[:, 0].max() < 98 and hr[:, 1].min() > -2 and hr[:, 1].max() < 34


@pytest.mark.parametrize(
    "layout, expected", [("brazilian", {"Brazilian"}), ("mercosur", {"Mercosur"}), ("Mixed", {"Brazilian", "Mercosur"})]
)
def test_layout_choice_sets_every_track(layout: str, expected: set[str]) -> None:
    cfg = SynthConfig(tracks=200, layout=layout)
    layouts = [plan_track(cfg, i)[0].layout for i in range(cfg.tracks)]
    assert set(layouts) == expected
    if len(expected) == 2:
        assert 70 < layouts.count("Mercosur") < 130


def test_summary_counts_match_the_folders(tmp_path: Path) -> None:
    summary = render_dataset(tmp_path / "m", SynthConfig(tracks=4, layout="mercosur", frames=2))
    assert summary.layouts == {"Brazilian": 0, "Mercosur": 4}
    assert len(list((tmp_path / "m").glob("*/Mercosur/track_*/hr-002.png"))) == 4
    assert not list((tmp_path / "m").glob("*/*/*/hr-003.png"))


def test_split_file_lists_every_track_once_sorted(dataset: tuple[Path, synth.SynthSummary]) -> None:
    root, summary = dataset
    lines = (root / "split.txt").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("#")
    entries = [line.split() for line in lines[1:]]
    ids = [track_id for track_id, _ in entries]
    assert ids == sorted(ids) == sorted(t.relative_to(root).as_posix() for t in _track_dirs(root))
    counts = {name: sum(split == name for _, split in entries) for name in ("train", "val", "test")}
    assert counts == summary.splits == {"train": 8, "val": 1, "test": 1}


@pytest.mark.parametrize(
    "total, ratios, expected",
    [
        (1, (0.8, 0.1, 0.1), (1, 0, 0)),
        (2, (0.8, 0.1, 0.1), (2, 0, 0)),
        (3, (0.8, 0.1, 0.1), (1, 1, 1)),
        (10, (0.8, 0.1, 0.1), (8, 1, 1)),
        (100, (0.7, 0.2, 0.1), (70, 20, 10)),
        (5, (0.9, 0.0, 0.1), (4, 0, 1)),
        (4, (0.1, 0.45, 0.45), (1, 1, 2)),
    ],
)
def test_split_counts(total: int, ratios: tuple[float, float, float], expected: tuple[int, int, int]) -> None:
    assert split_counts(total, ratios) == expected


@pytest.mark.parametrize("hr_size, scale", [((32, 96), 2), ((32, 96), 4), ((48, 96), 3)])
def test_image_sizes_follow_hr_size_and_scale(tmp_path: Path, hr_size: tuple[int, int], scale: int) -> None:
    render_dataset(tmp_path / "d", SynthConfig(tracks=1, hr_size=hr_size, scale=scale, frames=2))
    track = _track_dirs(tmp_path / "d")[0]
    with Image.open(track / "hr-001.png") as hr, Image.open(track / "lr-002.png") as lr:
        assert (hr.mode, hr.size) == ("RGB", (hr_size[1], hr_size[0]))
        assert (lr.mode, lr.size) == ("RGB", (hr_size[1] // scale, hr_size[0] // scale))


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image, dtype=np.float32)


def test_frames_of_a_track_differ_and_lr_follows_its_hr(dataset: tuple[Path, synth.SynthSummary]) -> None:
    track = _track_dirs(dataset[0])[0]
    hr = [_pixels(track / f"hr-{n:03d}.png") for n in range(1, 6)]
    lr = [_pixels(track / f"lr-{n:03d}.png") for n in range(1, 6)]
    for a, b in zip(hr, hr[1:]):
        assert np.abs(a - b).mean() > 2
    for a, b in zip(lr, lr[1:]):
        assert np.abs(a - b).mean() > 2
    shrunk = np.asarray(Image.fromarray(hr[0].astype(np.uint8)).resize((48, 16), Image.Resampling.BICUBIC), float)
    assert np.corrcoef(shrunk.ravel(), lr[0].ravel())[0, 1] > 0.7


def test_plate_text_and_clean_plate() -> None:
    rng = np.random.default_rng(0)
    for layout in ("Brazilian", "mercosur"):
        for _ in range(50):
            assert layout_problem(random_plate_text(rng, layout), layout) is None
    plate = render_plate("ABC1D23", "Mercosur", (32, 96), rng)
    assert (plate.mode, plate.size) == ("RGB", (96, 32))
    with pytest.raises(ValueError):
        render_plate("ABC1D23", "Brazilian", (32, 96), rng)


def glyph_in_a_cell(char: str, height: int, width: int, style: str = "standard") -> np.ndarray:
    """One plate character drawn as the plates of `style` draw it, alone in a cell: ink coverage in [0, 1]."""
    image = Image.new("RGB", (width, height), (255, 255, 255))
    synth._draw_characters(image, char, (0, 0, width, height), (0, 0, 0), separator=False, style=style)
    return 1.0 - np.asarray(image.convert("L"), dtype=float) / 255.0


def stem_width(char: str, height: int, width: int, style: str) -> float:
    """Median width of the ink runs in the rows at 30-40 % of the height: the vertical stems' weight."""
    ink = glyph_in_a_cell(char, height, width, style) > 0.5
    runs = []
    for row in ink[int(height * 0.3) : int(height * 0.4)]:
        edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(int), [0]])))
        runs += list(edges[1::2] - edges[::2])
    return float(np.median(runs))


@pytest.mark.parametrize("style", ["standard", "heldout"])
@pytest.mark.parametrize(("height", "width"), [(64, 35), (128, 70)])
@pytest.mark.parametrize("narrow", ["I", "J", "1"])
def test_narrow_glyphs_keep_the_stroke_weight_of_the_others(narrow: str, height: int, width: int, style: str) -> None:
    # Squeezing only the glyphs wider than their cell left I as thick as a block beside condensed letters.
    reference = np.median([stem_width(char, height, width, style) for char in "HLT"])
    assert stem_width(narrow, height, width, style) <= 1.3 * reference


@pytest.mark.parametrize("style", ["standard", "heldout"])
def test_every_glyph_of_the_charset_differs_from_every_other_at_plate_resolution(style: str) -> None:
    from lpasrn.data.charset import CHARSET

    def at_plate_size(char: str) -> np.ndarray:  # a 32 px HR plate has characters about 16 px tall
        ink = Image.fromarray((glyph_in_a_cell(char, 64, 36, style) * 255).astype(np.uint8))
        return np.asarray(ink.resize((9, 16), Image.Resampling.LANCZOS), dtype=float) / 255.0

    glyphs = {char: at_plate_size(char) for char in CHARSET}
    assert all(0.05 < glyph.mean() < 0.6 for glyph in glyphs.values())  # never blank, never a filled cell
    closest = min((np.abs(glyphs[a] - glyphs[b]).mean(), a, b) for i, a in enumerate(CHARSET) for b in CHARSET[i + 1 :])
    assert closest[0] > 0.04, closest


def test_refuses_a_non_empty_folder_unless_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious", encoding="utf-8")
    with pytest.raises(UserError, match=r"exists and is not empty \(use --overwrite"):
        render_dataset(out, SynthConfig(tracks=1, frames=1))
    assert [path.name for path in out.iterdir()] == ["keep.txt"]
    assert (out / "keep.txt").read_text(encoding="utf-8") == "precious"
    render_dataset(out, SynthConfig(tracks=1, frames=1), overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "split.txt").is_file()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]


def test_an_empty_folder_is_filled_without_overwrite(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert render_dataset(tmp_path / "empty", SynthConfig(tracks=1, frames=1)).tracks == 1


def test_a_failed_run_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def failing_write(*args: object) -> None:
        calls.append(args)
        if len(calls) == 2:
            raise RuntimeError("killed")
        real_write(*args)

    real_write = synth._write_track
    monkeypatch.setattr(synth, "_write_track", failing_write)
    with pytest.raises(RuntimeError):
        render_dataset(tmp_path / "out", SynthConfig(tracks=3, frames=1))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "kwargs, flag",
    [
        ({"tracks": 0}, "--tracks"),
        ({"layout": "french"}, "--layout"),
        ({"scale": 5}, "--scale"),
        ({"hr_size": (8, 96)}, "--hr-size"),
        ({"hr_size": (30, 96), "scale": 4}, "--hr-size"),
        ({"frames": 0}, "--frames"),
        ({"split_ratios": (0.5, 0.5, 0.5)}, "--split-ratios"),
        ({"seed": -1}, "--seed"),
    ],
)
def test_bad_arguments_raise_user_errors(kwargs: dict, flag: str) -> None:
    with pytest.raises(UserError, match=re.escape(flag)) as info:
        SynthConfig(**{"tracks": 1, **kwargs})
    assert "\n" not in str(info.value)


def test_a_file_in_the_way_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(UserError, match="is not a folder"):
        render_dataset(tmp_path / "file", SynthConfig(tracks=1))


def test_progress_bar_goes_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    render_dataset(tmp_path / "p", SynthConfig(tracks=2, frames=1), progress=True)
    captured = capsys.readouterr()
    assert captured.out == "" and "rendering plate tracks" in captured.err
