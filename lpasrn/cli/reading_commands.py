"""`lpasrn` commands that read plates with a trained bundle: evaluate, infer, predict (a submission), export (ONNX).

Heavy modules (torch, rendering) are imported inside the handlers so `--help` stays instant.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments.cli_common import HelpFormatter
from experiments.errors import UserError


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


def add_evaluate(sub: argparse._SubParsersAction) -> None:
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


def add_infer(sub: argparse._SubParsersAction) -> None:
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


def add_predict(sub: argparse._SubParsersAction) -> None:
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


def add_export(sub: argparse._SubParsersAction) -> None:
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


def add_commands(sub: argparse._SubParsersAction) -> None:
    add_evaluate(sub)
    add_infer(sub)
    add_predict(sub)
    add_export(sub)
