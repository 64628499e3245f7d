"""Reader for plate super-resolution tracks in the UFPR-SR-Plates / ICPR-2026 LRLPR layout.

    ROOT/<scenario>/<layout>/<track>/lr-001..005.{png,jpg}, hr-001..005.{png,jpg}, annotations.json

`annotations.json` holds `plate_text`, `plate_layout` (Brazilian | Mercosur) and `corners`. Tracks are found
at any depth below ROOT, so a dataset with an extra `train/` level drops in as well. Every item of a
`PlateSRDataset` is one (LR, HR) frame pair with a stable sample index, which the hard-example miner uses.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from experiments.errors import UserError
from experiments.paths import missing_input_hint
from lpasrn.data.charset import canonical_layout, layout_problem
from lpasrn.data.frames import EncodedFrame, FrameSource, frame_size_problem, image_size, open_rgb

log = logging.getLogger(__name__)

ANNOTATION_FILE = "annotations.json"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_FRAME_RE = re.compile(r"^(lr|hr)-(\d{3})$")


@dataclass(frozen=True)
class PlateTrack:
    """One vehicle's track: N low-resolution and N high-resolution frames of the same plate."""

    track_id: str  # path relative to the dataset root, e.g. "Scenario-A/Brazilian/track_00001"
    directory: Path | str  # the track's folder; for a packed dataset "<shard URI>#<track id>" (for messages)
    text: str
    layout: str  # canonical: "Brazilian" | "Mercosur"
    lr_paths: tuple[FrameSource, ...]  # files, or a packed dataset's in-memory frames (`lpasrn.data.packed`)
    hr_paths: tuple[FrameSource, ...]
    corners: Any = None

    @property
    def num_frames(self) -> int:
        return len(self.lr_paths)


@dataclass
class ScanResult:
    tracks: list[PlateTrack]
    skipped: dict[str, str] = field(default_factory=dict)  # track id -> reason (with --skip-bad)


def _read_annotation(path: Path) -> tuple[str, str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read ({err})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object with plate_text and plate_layout")
    for key in ("plate_text", "plate_layout"):
        if key not in data:
            raise UserError(f"{path}: missing key '{key}'")
        if not isinstance(data[key], str):
            raise UserError(f"{path}: {key} must be a string, got {type(data[key]).__name__}")
    try:
        layout = canonical_layout(data["plate_layout"])
    except ValueError as err:
        raise UserError(f"{path}: plate_layout: {err}") from None
    text = data["plate_text"].strip().upper()
    problem = layout_problem(text, layout)
    if problem:
        raise UserError(f"{path}: plate_text: {problem}")
    return text, layout, data.get("corners")


def _frame_paths(directory: Path) -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    """The LR and HR frames of a track, paired by number; a frame present on one side only is an error."""
    frames: dict[str, dict[int, Path]] = {"lr": {}, "hr": {}}
    for path in directory.iterdir():
        match = _FRAME_RE.match(path.stem)
        if match and path.suffix.lower() in IMAGE_SUFFIXES:
            frames[match.group(1)][int(match.group(2))] = path
    numbers = sorted(set(frames["lr"]) | set(frames["hr"]))
    if not numbers:
        raise UserError(f"{directory}: no frames found (expected lr-001.png .. and hr-001.png ..)")
    for number in numbers:
        for side in ("lr", "hr"):
            if number not in frames[side]:
                other = "hr" if side == "lr" else "lr"
                raise UserError(f"{directory}: missing frame {side}-{number:03d} ({other}-{number:03d} exists)")
    if numbers != list(range(1, len(numbers) + 1)):
        gap = next(n for n in range(1, numbers[-1] + 1) if n not in numbers)
        raise UserError(f"{directory}: missing frame lr-{gap:03d}/hr-{gap:03d} (frames are numbered from 001)")
    return tuple(frames["lr"][n] for n in numbers), tuple(frames["hr"][n] for n in numbers)


def scan_tracks(root: str | os.PathLike, skip_bad: bool = False) -> ScanResult:
    """Find every track below `root`. With `skip_bad`, tracks with bad annotations or frames are counted
    and skipped instead of stopping the run."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(
            f"{root}: dataset folder not found (set data.root or pass the dataset path){missing_input_hint()}"
        )
    result = ScanResult(tracks=[])
    for annotation in sorted(root.rglob(ANNOTATION_FILE)):
        directory = annotation.parent
        try:
            text, layout, corners = _read_annotation(annotation)
            lr_paths, hr_paths = _frame_paths(directory)
        except UserError as err:
            if not skip_bad:
                raise
            result.skipped[directory.relative_to(root).as_posix()] = str(err)
            continue
        track_id = directory.relative_to(root).as_posix()
        result.tracks.append(PlateTrack(track_id, directory, text, layout, lr_paths, hr_paths, corners))
    if not result.tracks:
        reason = f" ({len(result.skipped)} skipped as bad)" if result.skipped else ""
        raise UserError(f"{root}: no tracks found{reason} (expected <scenario>/<layout>/<track>/{ANNOTATION_FILE})")
    return result


@dataclass(frozen=True)
class LRTrack:
    """A track as the benchmark's test set gives it: only its LR frames (no HR, no annotations)."""

    track_id: str  # folder path relative to the scanned root ("track_00001" for a flat test folder)
    directory: Path
    lr_paths: tuple[Path, ...]


def _lr_frames(directory: Path, names: Sequence[str]) -> tuple[Path, ...]:
    numbered = {}
    for name in names:
        path = directory / name
        match = _FRAME_RE.match(path.stem)
        if match and match.group(1) == "lr" and path.suffix.lower() in IMAGE_SUFFIXES:
            numbered[int(match.group(2))] = path
    return tuple(numbered[number] for number in sorted(numbered))


def scan_lr_tracks(root: str | Path) -> list[LRTrack]:
    """Every track folder below `root` (at any depth, `root` itself included) with its LR frames, in path order.

    A track folder is one holding frames (`lr-*`/`hr-*` images) or `annotations.json`, or a folder with no
    sub-folders; HR frames and annotations are ignored when present. A track folder without an LR frame is a
    UserError naming it, so a test set is never scored with a track silently left out. Hidden folders are skipped.
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(
            f"{root}: test folder not found (pass the folder holding the track folders){missing_input_hint()}"
        )
    tracks = []
    for current, subfolders, files in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        directory = Path(current)
        is_track = ANNOTATION_FILE in files or any(_FRAME_RE.match(Path(name).stem) for name in files)
        if not is_track and (subfolders or directory == root):
            continue
        lr_paths = _lr_frames(directory, files)
        if not lr_paths:
            raise UserError(f"{directory}: track folder without LR frames (expected lr-001.png .. lr-005.png, or .jpg)")
        track_id = directory.relative_to(root).as_posix() if directory != root else root.resolve().name
        tracks.append(LRTrack(track_id, directory, lr_paths))
    if not tracks:
        raise UserError(f"{root}: no track folders found (expected <track>/lr-001.png .. lr-005.png below it)")
    return tracks


# ----------------------------------------------------------------------------------------------------------
# Splits
# ----------------------------------------------------------------------------------------------------------
SPLITS = ("train", "val", "test")
SPLIT_FILE_NAME = "split.txt"  # a dataset's own split file, at its root (what `lpasrn synth` writes)
_SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}


def read_split_file(
    path: str | Path, tracks: Sequence[PlateTrack], ignore: AbstractSet[str] = frozenset()
) -> dict[str, list[PlateTrack]]:
    """Split file: one `<track path> <train|val|test>` per line (space, comma or semicolon; `#` comments).

    Track paths are relative to the dataset root; tracks the file does not list belong to no split, and
    listed tracks in `ignore` (skipped as bad) are dropped.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: split file not found (data.split_file)")
    by_id = {track.track_id: track for track in tracks}
    splits: dict[str, list[PlateTrack]] = {name: [] for name in SPLITS}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = [part for part in re.split(r"[\s,;]+", line) if part]
        if len(parts) != 2:
            raise UserError(f"{path}:{number}: expected '<track path> <train|val|test>', got {line!r}")
        if parts[0].lower() in _SPLIT_ALIASES and parts[1].lower() not in _SPLIT_ALIASES:
            parts.reverse()
        track_path, split = parts[0].strip("/"), parts[1].lower()
        if split not in _SPLIT_ALIASES:
            raise UserError(f"{path}:{number}: unknown split {parts[1]!r} (expected train, val or test)")
        track = by_id.get(track_path)
        if track_path in ignore:
            continue
        if track is None:
            raise UserError(f"{path}:{number}: track {track_path!r} not found under the dataset root")
        splits[_SPLIT_ALIASES[split]].append(track)
    return splits


def split_by_ratio(tracks: Sequence[PlateTrack], ratios: Sequence[float], seed: int) -> dict[str, list[PlateTrack]]:
    """Random split by track with a fixed seed; tracks of the same plate text always share a split."""
    texts = sorted({track.text for track in tracks})
    order = np.random.default_rng(seed).permutation(len(texts))
    bounds = np.cumsum(np.asarray(ratios, dtype=float)) * len(texts)
    split_of_text = {}
    for rank, text_index in enumerate(order):
        split_index = int(np.searchsorted(bounds, rank, side="right"))
        split_of_text[texts[text_index]] = SPLITS[min(split_index, len(SPLITS) - 1)]
    splits: dict[str, list[PlateTrack]] = {name: [] for name in SPLITS}
    for track in tracks:
        splits[split_of_text[track.text]].append(track)
    return splits


# ----------------------------------------------------------------------------------------------------------
# Dataset
# ----------------------------------------------------------------------------------------------------------
def resized_array(image: Image.Image, size_hw: tuple[int, int] | None) -> np.ndarray:
    """RGB image -> uint8 array [H, W, 3], bicubic-resized to `size_hw`. Every reader (folders, packed shards in
    this process or in Ray Data tasks) goes through this one function, so they give the same pixels."""
    if size_hw is not None and image.size != (size_hw[1], size_hw[0]):
        image = image.resize((size_hw[1], size_hw[0]), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.uint8)


def array_to_tensor(array: np.ndarray) -> torch.Tensor:
    """uint8 [..., H, W, 3] -> float [..., 3, H, W] in [0, 1]."""
    return torch.from_numpy(np.array(array, copy=True)).movedim(-1, -3).float().div_(255.0)


def _to_tensor(image: Image.Image, size_hw: tuple[int, int] | None) -> torch.Tensor:
    return array_to_tensor(resized_array(image, size_hw))


def load_rgb(path: FrameSource, size_hw: tuple[int, int] | None = None) -> torch.Tensor:
    """Image file (any mode, 16-bit included) -> float tensor [3, H, W] in [0, 1], bicubic-resized to `size_hw`."""
    return _to_tensor(open_rgb(path), size_hw)


LR_FRAMES = "lr_frames"  # a sample's key for the stacked frames a multi-frame generator reads


def frame_order(num_frames: int, reference: int, count: int) -> list[int]:
    """The frames a multi-frame sample stacks: the reference itself first, then the track's next ones, cycling
    (a track with fewer frames than `count` repeats them; equal frames simply share the fusion's weight)."""
    return [(reference + step) % num_frames for step in range(count)]


def frame_stacks(frames: torch.Tensor, count: int) -> torch.Tensor:
    """A track's frames [F, 3, h, w] -> [F, count, 3, h, w]: every frame as reference once, with its neighbours."""
    orders = [frame_order(len(frames), reference, count) for reference in range(len(frames))]
    return frames[torch.tensor(orders)]


def generator_input(batch: dict[str, Any]) -> torch.Tensor:
    """What the generator reads from a batch: the stacked frames when the dataset made them, else the LR frame."""
    return batch[LR_FRAMES] if LR_FRAMES in batch else batch["lr"]


class PlateSRDataset(Dataset):
    """(LR, HR) frame pairs of a list of tracks, each with its text, layout, track id and sample index.

    With `generator_frames` > 1 each sample also holds `lr_frames` [K, 3, h, w]: its LR frame and the track's next
    ones (`frame_order`), for a multi-frame generator; HR stays the sample's own frame (the reference's geometry).
    """

    def __init__(self, tracks: Sequence[PlateTrack], lr_size: tuple[int, int], scale: int, generator_frames: int = 1):
        self.tracks = list(tracks)
        self.generator_frames = generator_frames
        self.lr_size: tuple[int, int] = (lr_size[0], lr_size[1])
        self.hr_size = (lr_size[0] * scale, lr_size[1] * scale)
        self.samples = [(t, f) for t, track in enumerate(self.tracks) for f in range(track.num_frames)]
        self._warned: set[str] = set()  # tracks already warned about (per loading process)

    def _warn_odd_sizes(self, track: PlateTrack, frame: int, lr: Image.Image, hr: Image.Image) -> None:
        if track.track_id in self._warned:
            return
        problem = frame_size_problem(lr.size, hr.size)
        if problem:
            self._warned.add(track.track_id)
            log.warning(
                "%s: frame %03d: %s; resized anyway, check the data (lpasrn check-data counts these)",
                track.directory,
                frame,
                problem,
            )

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        track_index, frame_index = self.samples[index]
        track = self.tracks[track_index]
        lr, hr = open_rgb(track.lr_paths[frame_index]), open_rgb(track.hr_paths[frame_index])
        self._warn_odd_sizes(track, frame_index + 1, lr, hr)
        sample: dict[str, Any] = {
            "lr": _to_tensor(lr, self.lr_size),
            "hr": _to_tensor(hr, self.hr_size),
            "text": track.text,
            "layout": track.layout,
            "track_id": track.track_id,
            "frame": frame_index + 1,
            "index": index,
        }
        if self.generator_frames > 1:
            others = frame_order(track.num_frames, frame_index, self.generator_frames)[1:]
            sample[LR_FRAMES] = torch.stack(
                [sample["lr"], *(load_rgb(track.lr_paths[f], self.lr_size) for f in others)]
            )
        return sample

    @property
    def texts(self) -> list[str]:
        return [self.tracks[t].text for t, _ in self.samples]


def folder_split_file(root: str | os.PathLike, split_file: str | os.PathLike | None = None) -> Path | None:
    """A folder dataset's split file: the one given, else its own `ROOT/split.txt`, else None (split by ratio)."""
    if split_file is not None:
        return Path(split_file)
    own = Path(root) / SPLIT_FILE_NAME
    return own if own.is_file() else None


def folder_splits(
    root: str | os.PathLike,
    split_file: str | os.PathLike | None = None,
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    skip_bad: bool = False,
) -> tuple[dict[str, list[PlateTrack]], dict[str, str]]:
    """Scan the folder `root` and cut it into train/val/test track lists (by `folder_split_file`, else by ratio);
    returns the splits and the skipped tracks (track id -> reason; empty unless `skip_bad`)."""
    scan = scan_tracks(root, skip_bad=skip_bad)
    split_file = folder_split_file(root, split_file)
    if split_file is not None:
        splits = read_split_file(split_file, scan.tracks, ignore=set(scan.skipped))
    else:
        splits = split_by_ratio(scan.tracks, ratios, seed)
    return splits, scan.skipped


# ----------------------------------------------------------------------------------------------------------
# Frame sizes that look like data errors
# ----------------------------------------------------------------------------------------------------------
def _file_name(source: FrameSource) -> str:
    return source.name.rsplit("/", 1)[-1] if isinstance(source, EncodedFrame) else source.name


def track_frame_problem(track: PlateTrack) -> str | None:
    """The first frame pair of `track` whose sizes look wrong, described with its file, or None."""
    for lr_path, hr_path in zip(track.lr_paths, track.hr_paths):
        problem = frame_size_problem(image_size(lr_path), image_size(hr_path))
        if problem:
            return f"{_file_name(lr_path)}/{_file_name(hr_path)}: {problem}"
    return None


def odd_tracks(tracks: Iterable[PlateTrack]) -> dict[Path | str, str]:
    """Track folder -> its first suspicious frame pair, for every track that has one (headers only)."""
    found = {}
    for track in tracks:
        problem = track_frame_problem(track)
        if problem:
            found[track.directory] = problem
    return found
