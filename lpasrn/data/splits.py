"""A dataset's train/val/test tracks, whatever it is stored as: a folder of track folders, or `lpasrn pack`'s shards.

Every command asks these two functions, so `check-data ROOT`, `--config`, training and evaluation never disagree
about a dataset's split. They sit above both readers (`lpasrn.data.plates` for folders, `lpasrn.data.packed` for
shards), which therefore never import each other's way round.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lpasrn.data import packed
from lpasrn.data.plates import PlateTrack, folder_split_file, folder_splits


def resolve_split_file(root: str | Path, split_file: str | Path | None = None) -> Path | None:
    """The split file to use: the one given, else the dataset's own `ROOT/split.txt`, else None (no file). A packed
    dataset has no split file: its split is a column of its shards."""
    return None if packed.is_packed(root) else folder_split_file(root, split_file)


def build_splits(
    root: str | Path,
    split_file: str | Path | None = None,
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    skip_bad: bool = False,
) -> tuple[dict[str, list[PlateTrack]], dict[str, str]]:
    """Train/val/test track lists of `root` (by split file, `ROOT/split.txt` when none is given and it exists, else
    by ratio) and the skipped tracks (track id -> reason; empty unless `skip_bad`). A packed dataset (a URI, or a
    folder with its manifest) is read whole into memory, split by its shards' split column."""
    if packed.is_packed(root):
        packed.refuse_split_file(root, split_file)
        return packed.read_split_tracks(root), {}
    return folder_splits(root, split_file, ratios, seed, skip_bad)
