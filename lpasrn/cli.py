"""`lpasrn` command line: plate data (synth, preview, check-data), configuration, models, training and inference.

Heavy modules (torch, rendering) are imported inside the handlers so `--help` stays instant.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from pathlib import Path

from experiments.cli_common import HelpFormatter, add_config_arguments, console_entrypoints, print_or_save_config
from experiments.errors import UserError


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


def _cmd_config(args: argparse.Namespace) -> int:
    from lpasrn.config import load_lpasrn_config

    return print_or_save_config(load_lpasrn_config(args.config, args.overrides), args.out)


def _cmd_model_summary(args: argparse.Namespace) -> int:
    from lpasrn.config import load_lpasrn_config
    from lpasrn.model_factory import build_generator, build_ocr
    from lpasrn.models.summary import summarize

    cfg = load_lpasrn_config(args.config, args.overrides)
    generator = build_generator(cfg.model, cfg.data.scale)
    ocr = build_ocr(cfg.ocr, pretrained=False)  # counting does not need the weights
    print(summarize(generator, ocr, cfg.ocr.model_type, cfg.data.lr_size))
    return 0


def _cmd_list_models(args: argparse.Namespace) -> int:
    from lpasrn.models.summary import registry_table

    print(registry_table(args.scale))
    return 0


def _train_overrides(args: argparse.Namespace) -> list[str]:
    """Command-line flags win over the file and --set."""
    flags = list(args.overrides)
    if args.num_workers is not None:
        flags.append(f"run.num_workers={args.num_workers}")
    if args.gpu:
        flags.append("run.use_gpu=true")
    if args.storage_path is not None:
        flags.append(f"run.storage_path={args.storage_path}")
    if args.name is not None:
        flags.append(f"run.name={args.name}")
    return flags


def _cmd_train(args: argparse.Namespace) -> int:
    import logging

    from lpasrn.config import load_lpasrn_config
    from lpasrn.data import packed
    from lpasrn.data.splits import build_splits
    from lpasrn.training.pipeline import LocalLauncher, StageLauncher, run_pipeline

    cfg = load_lpasrn_config(args.config, _train_overrides(args)).with_absolute_paths()
    if args.stage is not None and not 0 <= args.stage < len(cfg.stages):
        raise UserError(f"--stage {args.stage}: expected 0..{len(cfg.stages) - 1}")
    data = cfg.data
    if packed.is_packed(data.root):  # fail fast here, reading the manifest only (the shards may be large)
        packed.refuse_split_file(data.root, data.split_file)
        packed.read_manifest(data.root)
    else:
        build_splits(data.root, data.split_file, data.split_ratios, data.split_seed, data.skip_bad)
    if args.local:
        if cfg.run.num_workers > 1:
            logging.getLogger("lpasrn").warning(
                "--local runs one process; run.num_workers=%d is ignored", cfg.run.num_workers
            )
        launcher: StageLauncher = LocalLauncher()
    else:
        from lpasrn.ray_glue.cluster import check_resources, connect
        from lpasrn.ray_glue.train import RayTrainLauncher

        connect()
        check_resources(cfg)
        launcher = RayTrainLauncher()
    stages = [args.stage] if args.stage is not None else None
    bundle = run_pipeline(cfg, launcher, stages, args.init_checkpoint)
    print(f"inference bundle: {bundle}")
    return 0


def _device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available here")
    return requested


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from lpasrn.inference.evaluation import evaluate, write_grid, write_report

    result = evaluate(
        args.checkpoint,
        args.data,
        args.split,
        args.split_file,
        args.constrain_layout,
        _device(args.device),
        lr_ocr=args.lr_ocr,
        independent_ocr=args.independent_ocr,
    )
    print(result.table())
    if args.report:
        print(f"wrote {write_report(result, args.report)}")
    if args.grid:
        print(f"wrote {write_grid(result, args.grid)}")
    return 0


def _cmd_infer(args: argparse.Namespace) -> int:
    from lpasrn.inference.evaluation import infer

    for reading in infer(args.checkpoint, args.images, args.out, args.layout, _device(args.device)):
        written = f"  -> {reading.sr_path}" if reading.sr_path else ""
        print(f"{reading.image}: {reading.text} (confidence {reading.confidence:.3f}){written}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    import time

    import torch

    from lpasrn.inference.prediction import load_reader, predict
    from lpasrn.inference.submission import write_submission

    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cpu" if args.onnx is not None and args.device == "auto" else _device(args.device)
    reader = load_reader(args.checkpoint, args.onnx, device, args.decode, args.threads)
    start = time.perf_counter()
    predictions = predict(reader, args.data, args.fusion, args.batch_tracks)
    seconds = time.perf_counter() - start
    written = write_submission(args.out, predictions)
    backend = "ONNX Runtime" if args.onnx else "PyTorch"
    print(
        f"wrote {len(predictions)} tracks to {written} (fusion {args.fusion}, {backend}, "
        f"{len(predictions) / max(seconds, 1e-9):.1f} tracks/s)"
    )
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from lpasrn.inference.deploy import export_onnx

    report = export_onnx(args.checkpoint, args.out, overwrite=args.overwrite, opset=args.opset)
    print(
        f"wrote {report.folder}/generator.onnx, ocr.onnx and meta.json (OCR: {report.ocr_decoding}); "
        f"ONNX Runtime vs PyTorch on 4 random plates: max logit difference {report.max_logit_difference:.2e}"
    )
    return 0


def _checkpoint_errors_as_user_errors(handler: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
    """A checkpoint the models cannot use (`CheckpointError`; they know nothing of the command line) is a one-line
    user error. Its class is imported only once something failed, so `--help` stays free of torch."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except Exception as err:
            from lpasrn.models.checkpoints import CheckpointError

            if isinstance(err, CheckpointError):
                raise UserError(str(err)) from None
            raise

    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lpasrn",
        formatter_class=HelpFormatter,
        description="License-plate super-resolution (SwinIR + PARSeq) on Ray.",
    )
    parser.add_argument("--debug", action="store_true", help="verbose logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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

    config = sub.add_parser(
        "config",
        formatter_class=HelpFormatter,
        help="validate and print a config",
        description="Validate an experiment file with overrides and print the result.",
    )
    add_config_arguments(config, default="lp_asrn")
    config.add_argument("--out", type=Path, help="write config.resolved.yaml into this folder instead")
    config.set_defaults(handler=_cmd_config)

    train = sub.add_parser(
        "train",
        formatter_class=HelpFormatter,
        help="run the progressive stages",
        description="Run stages 0..4 (or one with --stage) in one Ray Train run, "
        "each starting from the previous stage's best checkpoint. Without --local and "
        "RAY_ADDRESS a local Ray starts by itself. The same command again resumes an "
        "interrupted run.",
    )
    add_config_arguments(train, default="lp_asrn")
    train.add_argument("--stage", type=int, help="run only this stage (starting from stage N-1's best in the same run)")
    train.add_argument("--num-workers", type=int, help="Ray Train workers (run.num_workers)")
    train.add_argument("--gpu", action="store_true", help="one GPU per worker (run.use_gpu)")
    train.add_argument("--storage-path", help="where runs are written (run.storage_path)")
    train.add_argument("--name", help="run name (run.name); the Ray run is <name>-stage<k> or <name>-stages<a>-<b>")
    train.add_argument("--init-checkpoint", help="seed the first stage run from this checkpoint")
    train.add_argument("--local", action="store_true", help="train in this process, no Ray (one GPU or the CPU)")
    train.set_defaults(handler=_cmd_train)

    evaluate = sub.add_parser(
        "evaluate",
        formatter_class=HelpFormatter,
        help="recognition rate, PSNR, SSIM",
        description="Word and character accuracy, PSNR and SSIM of a bundle on a dataset "
        "split, beside the same OCR on bicubic-up-scaled LR and on HR; then "
        "each row per track as the ICPR 2026 LRLPR benchmark scores it: track "
        "recognition rate, character accuracy and confidence gap per fusion "
        "(vote, mean_prob, weighted_prob, mean_logprob) beside the single-frame "
        "rate.",
    )
    evaluate.add_argument(
        "--checkpoint", required=True, help="inference bundle or stage checkpoint (a path or a URI such as s3://...)"
    )
    evaluate.add_argument(
        "--data",
        required=True,
        help="dataset folder, or a packed dataset (lpasrn pack: a URI such as s3://..., or its folder)",
    )
    evaluate.add_argument(
        "--split",
        choices=("train", "val", "test"),
        help="split to score (default test; a folder without a split file is scored whole)",
    )
    evaluate.add_argument("--split-file", type=Path, help="split file (default: DATA/split.txt when present)")
    evaluate.add_argument(
        "--constrain-layout", action="store_true", help="read letters/digits where each plate's layout wants them"
    )
    evaluate.add_argument(
        "--lr-ocr",
        metavar="CHECKPOINT",
        help="also read the bicubic LR with this bundle's OCR, trained on LR frames "
        "(stage 0 with stages.0.ocr_input=lr): the OCR-only baseline",
    )
    evaluate.add_argument(
        "--independent-ocr",
        metavar="CHECKPOINT",
        help="read SR, bicubic and HR again with this bundle's OCR (trained on HR only, never "
        "used to train the generator): legibility to a reader the generator did not fit",
    )
    evaluate.add_argument("--report", type=Path, help="write the metrics as JSON")
    evaluate.add_argument("--grid", type=Path, help="write a PNG of the worst and best cases")
    evaluate.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    evaluate.set_defaults(handler=_cmd_evaluate)

    infer = sub.add_parser(
        "infer",
        formatter_class=HelpFormatter,
        help="read plates from LR images",
        description="Super-resolve LR plate images and read them.",
    )
    infer.add_argument("images", nargs="+", type=Path, help="LR plate images")
    infer.add_argument(
        "--checkpoint", required=True, help="inference bundle or stage checkpoint (a path or a URI such as s3://...)"
    )
    infer.add_argument(
        "--out",
        type=Path,
        help="folder for the SR images (<stem>_sr.png, keeping the inputs' paths relative to their common folder)",
    )
    infer.add_argument("--layout", choices=("brazilian", "mercosur"), help="constrain reading to this layout")
    infer.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    infer.set_defaults(handler=_cmd_infer)

    predict = sub.add_parser(
        "predict",
        formatter_class=HelpFormatter,
        help="submission file for a test set (LR frames only)",
        description="Read every track folder below --data from its LR frames alone (HR frames and annotations are "
        "not needed, and ignored when present), fuse each track's frames into one plate and a confidence, "
        "and write the ICPR 2026 LRLPR submission: one line 'track_id,plate_text;confidence' per track. "
        "The track id is the folder's path relative to --data.",
    )
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="inference bundle or stage checkpoint (PyTorch; a path or a URI)")
    source.add_argument(
        "--onnx", type=Path, metavar="DIR", help="folder from lpasrn export --format onnx (ONNX Runtime)"
    )
    predict.add_argument("--data", required=True, type=Path, help="test folder holding the track folders")
    predict.add_argument("--out", required=True, type=Path, help="submission file to write")
    # No argparse choices: a bad fusion is one line from predict(), not a usage dump.
    predict.add_argument(
        "--fusion",
        default="weighted_prob",
        metavar="{vote,mean_prob,weighted_prob,mean_logprob}",
        help="how a track's frames become one plate (see lpasrn evaluate's fusion table)",
    )
    predict.add_argument("--batch-tracks", type=int, default=16, help="tracks read per batch (5 frames each)")
    predict.add_argument(
        "--decode",
        choices=("ar", "nar"),
        help="PARSeq decoding (default: the model's own, autoregressive; the ONNX graph is nar)",
    )
    predict.add_argument("--threads", type=int, default=0, help="CPU threads (0: the library's default)")
    predict.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    predict.set_defaults(handler=_cmd_predict)

    export = sub.add_parser(
        "export",
        formatter_class=HelpFormatter,
        help="deployable ONNX graphs of a bundle",
        description="Write the generator and the OCR as ONNX graphs with a dynamic batch size (generator.onnx, "
        "ocr.onnx, meta.json): the OCR reads a fixed 7-character plate without a loop (PARSeq: "
        "non-autoregressive decoding and its refinement rounds). Run them with lpasrn predict --onnx.",
    )
    export.add_argument("--checkpoint", required=True, help="inference bundle or stage checkpoint")
    export.add_argument("--format", required=True, choices=("onnx",), help="export format")
    export.add_argument("--out", required=True, type=Path, help="output folder")
    export.add_argument("--opset", type=int, default=17, help="ONNX opset version")
    export.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    export.set_defaults(handler=_cmd_export)

    summary = sub.add_parser(
        "model-summary",
        formatter_class=HelpFormatter,
        help="parameter counts and shapes",
        description="Print parameter counts per component of the generator and the OCR, "
        "and the generator's output shape for the configured LR size.",
    )
    add_config_arguments(summary, default="lp_asrn")
    summary.set_defaults(handler=_cmd_model_summary)

    models = sub.add_parser(
        "list-models",
        formatter_class=HelpFormatter,
        help="registered generators and OCRs",
        description="Print every registered generator preset and OCR, one per line, with its "
        "parameter count and settings (window, embed dim, ...).",
    )
    models.add_argument("--scale", type=int, default=2, choices=(2, 3, 4), help="the generators' up-scaling factor")
    models.set_defaults(handler=_cmd_list_models)

    for command in sub.choices.values():
        command.set_defaults(handler=_checkpoint_errors_as_user_errors(command.get_default("handler")))
    return parser


run, main = console_entrypoints(build_parser)

if __name__ == "__main__":
    main()
