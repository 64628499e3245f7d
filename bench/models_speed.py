"""Throughput of the lpasrn models: generator training steps and OCR reads, side by side.

    python bench/models_speed.py [--batch 32] [--iters 1] [--device cpu|cuda] [--bf16] [--threads 1]

Generator rows time forward + backward of an L1 loss at LR 16x48 -> x2 (the training step without the optimiser);
OCR rows time `forward` without gradients on 32x96 plates (resized to 32x128 inside), 7 characters + EOS,
autoregressive (AR) and non-autoregressive (NAR), each with one refinement round. Ratios are samples/s divided
by the `maximum` generator's and by PARSeq AR's. One untimed warm-up on two samples precedes each row.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from lpasrn.models import create_model, create_parseq  # noqa: E402

LR_SIZE = (16, 48)
SCALE = 2
PLATE_LENGTH = 7


@dataclass
class Row:
    model: str
    workload: str
    ms_per_batch: float
    samples_per_s: float


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_step(step: Callable[[torch.Tensor], None], inputs: torch.Tensor, iters: int, device: torch.device) -> float:
    """Seconds per call of `step` on the full batch, after a warm-up on two samples."""
    step(inputs[:2])
    synchronize(device)
    start = time.perf_counter()
    for _ in range(iters):
        step(inputs)
    synchronize(device)
    return (time.perf_counter() - start) / iters


def generator_rows(batch: int, iters: int, device: torch.device, autocast: Callable) -> list[Row]:
    rows = []
    lr = torch.rand(batch, 3, *LR_SIZE, device=device)
    hr = torch.rand(batch, 3, LR_SIZE[0] * SCALE, LR_SIZE[1] * SCALE, device=device)
    for preset in ("maximum", "lightweight"):
        torch.manual_seed(0)
        generator = create_model(f"swinir_{preset}", scale=SCALE).to(device).train()

        def train_step(images: torch.Tensor, generator: torch.nn.Module = generator) -> None:
            generator.zero_grad(set_to_none=True)
            with autocast():
                output = generator(images)
            (output.float() - hr[: len(images)]).abs().mean().backward()

        seconds = time_step(train_step, lr, iters, device)
        rows.append(
            Row(f"generator {preset}", f"x{SCALE} {LR_SIZE[0]}x{LR_SIZE[1]} fwd+bwd", seconds * 1e3, batch / seconds)
        )
    return rows


def ocr_rows(size: str, batch: int, iters: int, device: torch.device, autocast: Callable) -> list[Row]:
    rows = []
    torch.manual_seed(0)
    ocr = create_parseq(size).to(device).eval()
    plates = torch.rand(batch, 3, LR_SIZE[0] * SCALE, LR_SIZE[1] * SCALE, device=device)
    for mode, decode_ar in (("AR", True), ("NAR", False)):
        ocr.decode_ar = decode_ar

        @torch.no_grad()
        def read(images: torch.Tensor) -> None:
            with autocast():
                ocr(images, max_length=PLATE_LENGTH)

        seconds = time_step(read, plates, iters, device)
        rows.append(Row(f"{size} {mode}", "32x128 read, refine 1", seconds * 1e3, batch / seconds))
    return rows


def format_table(rows: list[Row], generator_reference: Row, ocr_reference: Row) -> str:
    header = ("model", "workload", "ms/batch", "samples/s", "x maximum", "x PARSeq AR")
    lines = [
        (
            row.model,
            row.workload,
            f"{row.ms_per_batch:,.1f}",
            f"{row.samples_per_s:,.2f}",
            f"{row.samples_per_s / generator_reference.samples_per_s:.2f}",
            f"{row.samples_per_s / ocr_reference.samples_per_s:.3f}",
        )
        for row in rows
    ]
    widths = [max(len(line[column]) for line in [header, *lines]) for column in range(len(header))]

    def render(cells: list[str]) -> str:
        return "  ".join(
            cell.ljust(width) if column < 2 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(cells, widths))
        )

    return "\n".join([render(header), "  ".join("-" * width for width in widths), *map(render, lines)])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=32, help="samples per timed batch (default 32)")
    parser.add_argument(
        "--iters",
        type=int,
        default=1,
        help="timed batches per row (default 1: the maximum generator needs ~1 min a batch on a core)",
    )
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--bf16", action="store_true", help="run under bfloat16 autocast")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads for torch (default 1: comparable across machines, steady on shared ones)",
    )
    parser.add_argument("--ocr", default="parseq", choices=("parseq", "parseq_tiny"), help="OCR size (default parseq)")
    args = parser.parse_args(argv)
    if args.batch < 2 or args.iters < 1 or args.threads < 1:
        parser.error("--batch must be at least 2, --iters and --threads at least 1")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = torch.bfloat16 if args.bf16 else torch.float32

    def autocast() -> contextlib.AbstractContextManager:
        return torch.autocast(device.type, dtype=torch.bfloat16) if args.bf16 else contextlib.nullcontext()

    print(
        f"device {device} ({torch.get_num_threads()} CPU threads), {str(dtype).removeprefix('torch.')}, "
        f"batch {args.batch}, {args.iters} timed iteration(s) per row",
        flush=True,
    )
    generators = generator_rows(args.batch, args.iters, device, autocast)
    ocrs = ocr_rows(args.ocr, args.batch, args.iters, device, autocast)
    print(format_table(generators + ocrs, generators[0], ocrs[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
