"""Plate tracks as Parquet shards: what `lpasrn pack` writes and every reader of a packed dataset reads.

A folder of track folders does not scale past one machine's disk. `pack_dataset` turns it into Parquet shards
on a local path or in a bucket (s3://, gs://, through pyarrow.fs like the runs in `experiments.storage`):

    LOCATION/pack-plan.json             what is being packed (written first; lets an interrupted pack resume)
    LOCATION/shards/<split>-00000.parquet   one row per frame pair, a split's tracks in order
    LOCATION/manifest.json              written last: a pack without it is unfinished, and no reader opens it

A row holds the frames' encoded bytes as they were on disk (PNG or JPEG, never re-encoded, so they decode to the
same pixels), the text, layout, corners (JSON), track id, frame number (1-based), split and `index`: the sample's
position in its split, counted over the split's tracks in order and their frames, exactly as `PlateSRDataset`
counts them, so the hard-example miner's per-sample state means the same sample in both readers. The split is
fixed when packing (split file, `ROOT/split.txt`, or the ratio split) and read back from the shards' column.

This module needs no Ray: `--local` training and evaluation read shards with pyarrow into memory (plates are a
few KB); `lpasrn.ray_glue.data` streams the training split with Ray Data instead, decoding with `decode_rows`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from experiments import storage
from experiments.errors import UserError
from lpasrn.data.frames import EncodedFrame, image_size, open_rgb
from lpasrn.data.plates import PlateTrack, folder_split_file, folder_splits, resized_array

PACK_FORMAT = "glyphray-plates-parquet/1"
MANIFEST_NAME = "manifest.json"
PLAN_NAME = "pack-plan.json"
SHARD_FOLDER = "shards"
SPLITS = ("train", "val", "test")
# Columns without the frames: enough to count, check and index a pack without reading its images.
META_COLUMNS = ["split", "index", "track_id", "frame", "text", "layout", "lr_name", "hr_name"]


def _schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("split", pa.string()),
            ("index", pa.int64()),
            ("track_id", pa.string()),
            ("frame", pa.int32()),
            ("text", pa.string()),
            ("layout", pa.string()),
            ("corners", pa.string()),
            ("lr_name", pa.string()),
            ("hr_name", pa.string()),
            ("lr", pa.binary()),
            ("hr", pa.binary()),
        ]
    )


def _location(location: str | os.PathLike) -> str:
    """A URI unchanged, a local path absolute (Ray workers start in folders of their own)."""
    return str(location) if storage.is_uri(location) else str(Path(location).expanduser().resolve())


def is_packed(location: str | os.PathLike) -> bool:
    """True for `lpasrn pack`'s output: any URI (only packed data lives in a bucket), or a folder holding a
    manifest or a pack plan (an unfinished pack, which `read_manifest` then refuses with a line saying so)."""
    if storage.is_uri(location):
        return True
    folder = Path(location)
    return (folder / MANIFEST_NAME).is_file() or (folder / PLAN_NAME).is_file()


def refuse_split_file(location: str | os.PathLike, split_file: str | os.PathLike | None) -> None:
    if split_file is not None:
        raise UserError(
            f"data.split_file={split_file}: {location} is a packed dataset whose split is stored in its "
            "shards; unset data.split_file (--set data.split_file=null), or pack again with "
            "lpasrn pack --split-file"
        )


# ----------------------------------------------------------------------------------------------------------
# Manifest
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PackedShard:
    path: str  # relative to the pack's location, e.g. "shards/train-00000.parquet"
    split: str
    tracks: int
    samples: int
    first_index: int  # `index` of the shard's first row within its split


@dataclass(frozen=True)
class PackManifest:
    location: str
    fingerprint: str
    shard_size: int
    shards: tuple[PackedShard, ...]
    source: str = ""
    split_origin: str = ""

    def shards_of(self, split: str) -> list[PackedShard]:
        return [shard for shard in self.shards if shard.split == split]

    def shard_uris(self, split: str) -> list[str]:
        return [storage.join(self.location, shard.path) for shard in self.shards_of(split)]

    def num_samples(self, split: str) -> int:
        return sum(shard.samples for shard in self.shards_of(split))

    def num_tracks(self, split: str) -> int:
        return sum(shard.tracks for shard in self.shards_of(split))

    def to_json(self) -> dict[str, Any]:
        return {
            "format": PACK_FORMAT,
            "fingerprint": self.fingerprint,
            "shard_size": self.shard_size,
            "source": self.source,
            "split_origin": self.split_origin,
            "splits": {
                split: {"tracks": self.num_tracks(split), "samples": self.num_samples(split)} for split in SPLITS
            },
            "shards": [
                {
                    "path": s.path,
                    "split": s.split,
                    "tracks": s.tracks,
                    "samples": s.samples,
                    "first_index": s.first_index,
                }
                for s in self.shards
            ],
        }


def _parse_manifest(location: str, name: str, raw: bytes) -> PackManifest:
    where = storage.join(location, name)
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{where}: not valid JSON ({err})") from None
    found = data.get("format") if isinstance(data, dict) else None
    if found != PACK_FORMAT:
        raise UserError(f"{where}: format: expected {PACK_FORMAT!r}, got {found!r}")
    try:
        shards = tuple(
            PackedShard(str(s["path"]), str(s["split"]), int(s["tracks"]), int(s["samples"]), int(s["first_index"]))
            for s in data["shards"]
        )
        manifest = PackManifest(
            location,
            str(data["fingerprint"]),
            int(data["shard_size"]),
            shards,
            str(data.get("source", "")),
            str(data.get("split_origin", "")),
        )
    except KeyError as err:
        raise UserError(f"{where}: missing key {err.args[0]!r}") from None
    except (TypeError, ValueError) as err:
        raise UserError(f"{where}: shards: {err}") from None
    bad = [shard.split for shard in shards if shard.split not in SPLITS]
    if bad:
        raise UserError(f"{where}: shards: unknown split {bad[0]!r} (expected train, val or test)")
    return manifest


def read_manifest(location: str | os.PathLike) -> PackManifest:
    """The finished pack at `location`; a missing manifest is a one-line error that tells how to finish it."""
    location = _location(location)
    try:
        raw = storage.read_bytes(storage.join(location, MANIFEST_NAME))
    except FileNotFoundError:
        unfinished = storage.exists(storage.join(location, PLAN_NAME))
        reason = (
            "the pack did not finish; run the same lpasrn pack command again to resume it"
            if unfinished
            else "not a packed dataset (lpasrn pack ROOT --out URI writes one)"
        )
        raise UserError(f"{location}: no {MANIFEST_NAME}: {reason}") from None
    except OSError as err:
        raise UserError(f"{location}: cannot read ({str(err).splitlines()[0]})") from None
    return _parse_manifest(location, MANIFEST_NAME, raw)


# ----------------------------------------------------------------------------------------------------------
# Reading without Ray
# ----------------------------------------------------------------------------------------------------------
def read_shard(uri: str, columns: Sequence[str] | None = None):
    """One shard as a pyarrow Table (rows in `index` order); unreadable is a one-line error naming it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        data = storage.read_bytes(uri)
    except FileNotFoundError:
        raise UserError(f"{uri}: shard listed in {MANIFEST_NAME} is missing") from None
    except OSError as err:
        raise UserError(f"{uri}: cannot read ({str(err).splitlines()[0]})") from None
    try:
        table = pq.read_table(pa.BufferReader(data), columns=list(columns) if columns else None)
    except (pa.ArrowException, OSError) as err:
        raise UserError(f"{uri}: not a readable Parquet shard ({str(err).splitlines()[0]})") from None
    expected = list(columns) if columns else _schema().names
    missing = [name for name in expected if name not in table.column_names]
    if missing:
        raise UserError(f"{uri}: column {missing[0]!r} missing (not written by lpasrn pack)")
    return table


def _check_shard_rows(uri: str, shard: PackedShard, rows: dict[str, list]) -> None:
    count = len(rows["index"])
    if count != shard.samples:
        raise UserError(f"{uri}: {count} rows, {MANIFEST_NAME} says {shard.samples}")
    wrong = next((split for split in rows["split"] if split != shard.split), None)
    if wrong is not None:
        raise UserError(f"{uri}: split column holds {wrong!r} in a {shard.split} shard")
    if rows["index"] != list(range(shard.first_index, shard.first_index + count)):
        raise UserError(f"{uri}: index column is not {shard.first_index}..{shard.first_index + count - 1} in order")


def _tracks_of_shard(uri: str, shard: PackedShard, with_frames: bool):
    table = read_shard(uri, None if with_frames else META_COLUMNS)
    rows = table.to_pydict()
    _check_shard_rows(uri, shard, rows)
    tracks, start = [], 0
    ids = rows["track_id"]
    while start < len(ids):
        end = start
        while end < len(ids) and ids[end] == ids[start]:
            end += 1
        frames = rows["frame"][start:end]
        if frames != list(range(1, end - start + 1)):
            raise UserError(f"{uri}: track {ids[start]}: frames {frames} are not 1..{end - start} in order")
        where = f"{uri}#{ids[start]}"
        frames_of = {side: rows[side] if with_frames else [b""] * len(ids) for side in ("lr", "hr")}
        lr = tuple(EncodedFrame(f"{where}/{rows['lr_name'][i]}", frames_of["lr"][i]) for i in range(start, end))
        hr = tuple(EncodedFrame(f"{where}/{rows['hr_name'][i]}", frames_of["hr"][i]) for i in range(start, end))
        corners = json.loads(rows["corners"][start]) if with_frames and rows["corners"][start] else None
        tracks.append(PlateTrack(ids[start], where, rows["text"][start], rows["layout"][start], lr, hr, corners))
        start = end
    if len(tracks) != shard.tracks:
        raise UserError(f"{uri}: {len(tracks)} tracks, {MANIFEST_NAME} says {shard.tracks}")
    return tracks


def read_split_tracks(
    location: str | os.PathLike,
    splits: Iterable[str] = SPLITS,
    with_frames: bool = True,
    manifest: PackManifest | None = None,
) -> dict[str, list]:
    """The packed tracks of `splits` as `PlateTrack`s (frames as in-memory `EncodedFrame`s), in pack order, so
    `PlateSRDataset` gives them the same sample indices as the folder they came from. Splits not asked for are
    empty lists. `with_frames=False` reads the small columns only, for counting and checking: its frames are
    named but hold no bytes."""
    manifest = manifest or read_manifest(location)
    result: dict[str, list] = {split: [] for split in SPLITS}
    for split in splits:
        for shard in manifest.shards_of(split):
            result[split].extend(_tracks_of_shard(storage.join(manifest.location, shard.path), shard, with_frames))
    return result


def decode_rows(batch: dict[str, Any], lr_size: tuple[int, int], scale: int) -> dict[str, np.ndarray]:
    """A batch of packed rows (column -> values) decoded as `PlateSRDataset` decodes files: uint8 `lr` [B, h, w, 3]
    and `hr` [B, h*scale, w*scale, 3] (`lpasrn.data.plates.array_to_tensor` makes the float tensors), with the
    text, layout, track id, frame and index. Ray Data calls it in its tasks; it imports no Ray."""
    hr_size = (lr_size[0] * scale, lr_size[1] * scale)
    names = zip(batch["track_id"], batch["lr_name"], batch["hr_name"])
    lr, hr = [], []
    for (track_id, lr_name, hr_name), lr_bytes, hr_bytes in zip(names, batch["lr"], batch["hr"]):
        lr.append(resized_array(open_rgb(EncodedFrame(f"{track_id}/{lr_name}", bytes(lr_bytes))), lr_size))
        hr.append(resized_array(open_rgb(EncodedFrame(f"{track_id}/{hr_name}", bytes(hr_bytes))), hr_size))
    return {
        "lr": np.stack(lr),
        "hr": np.stack(hr),
        "text": np.asarray(batch["text"], dtype=object),
        "layout": np.asarray(batch["layout"], dtype=object),
        "track_id": np.asarray(batch["track_id"], dtype=object),
        "frame": np.asarray(batch["frame"], dtype=np.int64),
        "index": np.asarray(batch["index"], dtype=np.int64),
    }


# ----------------------------------------------------------------------------------------------------------
# Packing
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PackSummary:
    location: str
    manifest: PackManifest
    written: int  # shards written by this call
    resumed: int  # shards found already written (an interrupted pack resumed)
    skipped_tracks: dict[str, str]
    already_complete: bool = False


def _fingerprint(splits: dict[str, list], shard_size: int) -> str:
    digest = hashlib.sha256(f"{PACK_FORMAT} {shard_size}\n".encode())
    for split in SPLITS:
        for track in splits[split]:
            names = [Path(p).name for p in (*track.lr_paths, *track.hr_paths)]
            digest.update(json.dumps([split, track.track_id, track.text, track.layout, names]).encode() + b"\n")
    return digest.hexdigest()[:16]


def _plan(splits: dict[str, list], shard_size: int) -> tuple[PackedShard, ...]:
    shards = []
    for split in SPLITS:
        tracks, first = splits[split], 0
        for number, start in enumerate(range(0, len(tracks), shard_size)):
            chunk = tracks[start : start + shard_size]
            samples = sum(track.num_frames for track in chunk)
            shards.append(
                PackedShard(f"{SHARD_FOLDER}/{split}-{number:05d}.parquet", split, len(chunk), samples, first)
            )
            first += samples
    return tuple(shards)


def _shard_bytes(tracks: Sequence, shard: PackedShard, progress) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns: dict[str, list] = {name: [] for name in _schema().names}
    index = shard.first_index
    for track in tracks:
        corners = json.dumps(track.corners) if track.corners is not None else ""
        for frame, (lr_path, hr_path) in enumerate(zip(track.lr_paths, track.hr_paths), start=1):
            image_size(lr_path), image_size(hr_path)  # an unreadable frame is refused here, naming the file
            row = {
                "split": shard.split,
                "index": index,
                "track_id": track.track_id,
                "frame": frame,
                "text": track.text,
                "layout": track.layout,
                "corners": corners,
                "lr_name": lr_path.name,
                "hr_name": hr_path.name,
                "lr": lr_path.read_bytes(),
                "hr": hr_path.read_bytes(),
            }
            for name, value in row.items():
                columns[name].append(value)
            index += 1
        progress.update(1)
    table = pa.Table.from_pydict(columns, schema=_schema())
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=1024, compression="zstd")  # frames are PNG/JPEG: little to gain
    return sink.getvalue()


def _existing_names(location: str) -> list[str]:
    """What is already at `location` (a folder or a bucket prefix); [] when nothing is."""
    if not storage.is_uri(location):
        folder = Path(location)
        if folder.exists() and not folder.is_dir():
            raise UserError(f"{location}: exists and is not a folder")
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    from pyarrow import fs

    filesystem, path = storage.resolve(location)
    try:
        infos = filesystem.get_file_info(fs.FileSelector(path, allow_not_found=True))
    except OSError as err:
        raise UserError(f"{location}: cannot list ({str(err).splitlines()[0]})") from None
    return sorted(info.base_name for info in infos)


def _write(uri: str, data: bytes) -> None:
    try:
        storage.write_bytes(uri, data)
    except OSError as err:
        raise UserError(f"{uri}: cannot write ({str(err).splitlines()[0]})") from None


def pack_dataset(
    root: str | os.PathLike,
    out: str | os.PathLike,
    shard_size: int = 500,
    split_file: str | os.PathLike | None = None,
    skip_bad: bool = False,
    progress: bool = False,
    overwrite: bool = False,
) -> PackSummary:
    """Write the tracks under the folder `root` as Parquet shards at `out` (a folder, s3:// or gs://).

    Atomic: each shard is one atomic write (a rename on a disk, one completed upload in a bucket) and the manifest
    comes last, so no reader opens a half-written pack. Resumable: the same command again skips the shards that
    are already there; a pack of other tracks (or another shard size) at `out` is refused, unless `overwrite`,
    which first deletes whatever is at `out`.
    """
    from tqdm.auto import tqdm

    if shard_size < 1:
        raise UserError(f"--shard-size {shard_size}: must be at least 1 (tracks per shard)")
    if storage.is_uri(root) or is_packed(root):
        raise UserError(f"{root}: already packed; lpasrn pack reads a folder of track folders")
    splits, skipped = folder_splits(root, split_file, skip_bad=skip_bad)
    used = folder_split_file(root, split_file)
    origin = f"split file {used}" if used else "ratio split 0.8/0.1/0.1, seed 0 (no split file)"
    location = _location(out)
    shards = _plan(splits, shard_size)
    manifest = PackManifest(
        location,
        _fingerprint(splits, shard_size),
        shard_size,
        shards,
        source=str(Path(root).resolve()),
        split_origin=origin,
    )
    plan_text = json.dumps(manifest.to_json(), indent=2).encode()
    existing = _existing_names(location)
    if overwrite and existing:
        try:
            storage.remove_tree(location)
        except OSError as err:
            raise UserError(f"{location}: cannot delete for --overwrite ({str(err).splitlines()[0]})") from None
        existing = []
    if MANIFEST_NAME in existing:
        done = read_manifest(location)
        if done.fingerprint != manifest.fingerprint:
            raise UserError(
                f"{location}: holds a finished pack of other tracks or another --shard-size "
                f"({MANIFEST_NAME}); choose another --out or pass --overwrite"
            )
        return PackSummary(location, done, 0, len(done.shards), skipped, already_complete=True)
    if PLAN_NAME in existing:
        plan = _parse_manifest(location, PLAN_NAME, storage.read_bytes(storage.join(location, PLAN_NAME)))
        if plan.fingerprint != manifest.fingerprint:
            raise UserError(
                f"{storage.join(location, PLAN_NAME)}: an unfinished pack of other tracks or another "
                "--shard-size is here; choose another --out or pass --overwrite"
            )
    elif existing:
        raise UserError(
            f"{location}: exists and is not empty (and is no pack to resume); choose another --out or pass --overwrite"
        )
    else:
        _write(storage.join(location, PLAN_NAME), plan_text)
    by_split = {split: iter(splits[split]) for split in SPLITS}
    written = resumed = 0
    total = sum(len(tracks) for tracks in splits.values())
    with tqdm(total=total, desc="packing tracks", unit="track", disable=not progress, dynamic_ncols=True) as bar:
        for shard in shards:
            tracks = [next(by_split[shard.split]) for _ in range(shard.tracks)]
            uri = storage.join(location, shard.path)
            if storage.exists(uri):
                resumed += 1
                bar.update(len(tracks))
                continue
            _write(uri, _shard_bytes(tracks, shard, bar))
            written += 1
    _write(storage.join(location, MANIFEST_NAME), plan_text)
    return PackSummary(location, manifest, written, resumed, skipped)
