"""`lpasrn` commands for plate data: render synthetic tracks, draw a contact sheet, pack Parquet shards, check data.

Heavy modules (torch, rendering) are imported inside the handlers so `--help` stays instant.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from experiments.cli_common import HelpFormatter, add_config_arguments


def _cmd_synth(args: argparse.Namespace) -> int:
    from lpasrn.data.synth import SynthConfig, render_dataset

    cfg = SynthConfig(
        tracks=args.tracks,
        layout=args.layout,
        seed=args.seed,
        hr_size=tuple(args.hr_size),
        scale=args.scale,
        frames=args.frames,
        style=args.style,
        test_only=args.test_only,
    )
    summary = render_dataset(args.out, cfg, overwrite=args.overwrite, progress=sys.stderr.isatty())
    layouts = ", ".join(f"{name} {count}" for name, count in summary.layouts.items())
    splits = ", ".join(f"{name} {count}" for name, count in summary.splits.items())
    print(f"wrote {summary.tracks} tracks ({summary.images} images; {layouts}; {splits}) to {summary.root}")
    return 0


def _cmd_preview(args: argparse.Namespace) -> int:
    from lpasrn.data.preview import make_contact_sheet

    out = make_contact_sheet(args.root, args.out, max_tracks=args.max_tracks, frame=args.frame)
    print(f"wrote {out}")
    return 0


def _cmd_pack(args: argparse.Namespace) -> int:
    from lpasrn.data.packed import pack_dataset

    summary = pack_dataset(
        args.root,
        args.out,
        args.shard_size,
        args.split_file,
        args.skip_bad,
        progress=sys.stderr.isatty(),
        overwrite=args.overwrite,
    )
    for track_id, reason in summary.skipped_tracks.items():
        print(f"skipped {track_id}: {reason}", file=sys.stderr)
    manifest = summary.manifest
    splits = ", ".join(
        f"{split} {manifest.num_tracks(split)} tracks / {manifest.num_samples(split)} frame pairs"
        for split in ("train", "val", "test")
    )
    if summary.already_complete:
        print(f"{summary.location}: already packed, nothing to do ({len(manifest.shards)} shards; {splits})")
        return 0
    resumed = f", {summary.resumed} already there from an interrupted pack" if summary.resumed else ""
    print(
        f"wrote {summary.written} shards{resumed} and manifest.json to {summary.location} ({splits}; "
        f"{manifest.split_origin})"
    )
    return 0


def _cmd_check_data(args: argparse.Namespace) -> int:
    from experiments import storage
    from lpasrn.config import load_lpasrn_config
    from lpasrn.data import packed
    from lpasrn.data.plates import load_rgb, odd_tracks
    from lpasrn.data.splits import build_splits, resolve_split_file

    if args.root is not None:
        root = args.root if storage.is_uri(args.root) else Path(args.root)
        split_file, ratios, seed = args.split_file, (0.8, 0.1, 0.1), 0
    else:
        data = load_lpasrn_config(args.config, args.overrides).data
        root, split_file, ratios, seed = data.root, data.split_file, data.split_ratios, data.split_seed
    skipped: dict[str, str]  # track id -> why it was skipped
    if packed.is_packed(root):
        packed.refuse_split_file(root, split_file)
        manifest = packed.read_manifest(root)
        # Without --verify-images only the small columns are read: counts and consistency, not the frames.
        splits, skipped = packed.read_split_tracks(root, with_frames=args.verify_images, manifest=manifest), {}
        print(
            f"packed dataset {manifest.location}: {len(manifest.shards)} shards, split by its split column "
            f"({manifest.split_origin})"
        )
    else:
        splits, skipped = build_splits(root, split_file, ratios, seed, skip_bad=args.skip_bad)
        used = resolve_split_file(root, split_file)
        print(
            f"split by {used}"
            if used
            else f"no split file: random split by track, ratios {'/'.join(f'{r:g}' for r in ratios)}, seed {seed}"
        )
    for track_id, reason in skipped.items():
        print(f"skipped {track_id}: {reason}", file=sys.stderr)
    images = 0
    for name, tracks in splits.items():
        layouts = {layout: sum(t.layout == layout for t in tracks) for layout in ("Brazilian", "Mercosur")}
        frames = sum(t.num_frames for t in tracks)
        print(
            f"{name:<5} {len(tracks):>6} tracks {frames:>7} frame pairs  "
            f"Brazilian {layouts['Brazilian']}, Mercosur {layouts['Mercosur']}"
        )
        if args.verify_images:
            for track in tracks:
                for path in track.lr_paths + track.hr_paths:
                    load_rgb(path)
                    images += 1
    if args.verify_images:
        print(f"verified {images} images")
    if packed.is_packed(root) and not args.verify_images:
        print("frame sizes not checked (a packed dataset's frames are read with --verify-images)")
        return 0
    odd = odd_tracks(track for tracks in splits.values() for track in tracks)
    for directory, problem in odd.items():
        print(f"odd frame sizes in {directory}: {problem}", file=sys.stderr)
    print(f"{len(odd)} tracks with odd frame sizes (LR larger than HR, or far from a plate's shape; resized anyway)")
    if skipped:
        print(f"skipped {len(skipped)} bad tracks")
    return 0


def add_synth(sub: argparse._SubParsersAction) -> None:
    synth = sub.add_parser(
        "synth",
        formatter_class=HelpFormatter,
        help="render synthetic plate tracks",
        description="Render LR/HR plate tracks in the UFPR-SR-Plates layout, with split.txt.",
    )
    synth.add_argument("--out", required=True, type=Path, help="output dataset folder")
    synth.add_argument("--tracks", type=int, default=100, help="number of tracks")
    synth.add_argument("--layout", choices=("brazilian", "mercosur", "mixed"), default="mixed")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--hr-size", type=int, nargs=2, default=(32, 96), metavar=("H", "W"))
    synth.add_argument("--scale", type=int, default=2, help="LR = HR / scale")
    synth.add_argument("--frames", type=int, default=5, help="frames per track")
    # No argparse choices: a bad style is SynthConfig's one-line error, not a usage dump.
    synth.add_argument(
        "--style",
        default="standard",
        metavar="{standard,heldout,varied}",
        help="heldout: the same tracks rendered unlike training (another typeface and plate art, "
        "colour casts, shadows, motion blur, heavy JPEG), to test generalisation; varied: "
        "training data with randomised typefaces (never heldout's) and LR degradations",
    )
    synth.add_argument(
        "--test-only",
        action="store_true",
        help="write no split.txt: the whole folder is one test set (lpasrn evaluate scores every track)",
    )
    synth.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    synth.set_defaults(handler=_cmd_synth)


def add_preview(sub: argparse._SubParsersAction) -> None:
    preview = sub.add_parser(
        "preview",
        formatter_class=HelpFormatter,
        help="contact sheet of LR/HR pairs",
        description="Write a PNG contact sheet of LR/HR pairs with their text.",
    )
    preview.add_argument("root", type=Path, help="dataset folder")
    preview.add_argument("--out", required=True, type=Path, help="output PNG")
    preview.add_argument("--max-tracks", type=int, default=24)
    preview.add_argument("--frame", type=int, default=1, help="which frame of each track")
    preview.set_defaults(handler=_cmd_preview)


def add_pack(sub: argparse._SubParsersAction) -> None:
    pack = sub.add_parser(
        "pack",
        formatter_class=HelpFormatter,
        help="track folders -> Parquet shards (local, s3://, gs://)",
        description="Write the tracks under ROOT as Parquet shards at --out (a folder, s3://bucket/prefix or "
        "gs://...): one row per LR/HR frame pair with the frames' encoded bytes, text, layout, track id, "
        "frame number, split and sample index. Shards are written atomically and manifest.json last; the "
        "same command again resumes an interrupted pack. Train on it with data.root=URI.",
    )
    pack.add_argument("root", type=Path, help="dataset folder (track folders and annotations.json)")
    pack.add_argument("--out", required=True, help="where the shards go: a folder, s3://... or gs://...")
    pack.add_argument("--shard-size", type=int, default=500, help="tracks per shard")
    pack.add_argument(
        "--split-file",
        type=Path,
        help="split file (default: ROOT/split.txt when present, else "
        "the 0.8/0.1/0.1 ratio split with seed 0); stored in the shards",
    )
    pack.add_argument("--skip-bad", action="store_true", help="count and skip bad tracks instead of failing")
    pack.add_argument(
        "--overwrite",
        action="store_true",
        help="delete whatever is at --out first (another pack, an unfinished one, other files)",
    )
    pack.set_defaults(handler=_cmd_pack)


def add_check_data(sub: argparse._SubParsersAction) -> None:
    check = sub.add_parser(
        "check-data",
        formatter_class=HelpFormatter,
        help="scan and split a dataset",
        description="Scan a dataset (ROOT, or data.* of --config), validate every "
        "annotation and print the split sizes.",
    )
    check.add_argument(
        "root",
        nargs="?",
        help="dataset folder or packed dataset (a URI, or a folder written by "
        "lpasrn pack; default: data.root of --config)",
    )
    check.add_argument("--split-file", type=Path, help="split file (default: ROOT/split.txt when present)")
    add_config_arguments(check, default="lp_asrn_tiny")
    check.add_argument("--skip-bad", action="store_true", help="count and skip bad tracks instead of failing")
    check.add_argument("--verify-images", action="store_true", help="decode every image")
    check.set_defaults(handler=_cmd_check_data)


def add_commands(sub: argparse._SubParsersAction) -> None:
    add_synth(sub)
    add_preview(sub)
    add_pack(sub)
    add_check_data(sub)
