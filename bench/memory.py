"""Peak resident memory of one training worker per preset (tiny, light, max), side by side.

    python bench/memory.py [--presets tiny,light,max] [--stage 3] [--steps 2] [--threads 2]

Each preset runs in a fresh process, as a Ray Train worker or `--local` does: imports, the preset's generator and
OCR built for one stage (default 3, finetune: both networks trained, so gradients and AdamW state for both), then
`--steps` optimiser steps at the preset's `data.batch_size` on random plates. Printed: resident memory after
building (imports + weights) and the process's peak (ru_maxrss) after the steps, in MiB. A stage's decoded data
cache (`data.cache_decoded`) comes on top: 11.5 KB per 16x48 -> 32x96 frame pair, printed per 10,000 pairs.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024


def resident_mib() -> float:
    """This process's current resident set, in MiB (Linux /proc)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / MIB


def child(preset: str, stage: int, steps: int, threads: int) -> None:
    import torch

    sys.path.insert(0, str(REPO / "bench"))
    from train_step import preset_config, training_step

    torch.set_num_threads(threads)
    cfg = preset_config(preset)
    step = training_step(cfg, stage, cfg.data.batch_size, torch.device("cpu"))
    built = resident_mib()
    for _ in range(steps):
        step()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"batch": cfg.data.batch_size, "built": built, "peak": peak, "ocr": cfg.ocr.model_type}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", default="tiny,light,max")
    parser.add_argument("--stage", type=int, default=3, choices=range(5))
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.stage, args.steps, args.threads)
        return 0
    print(
        f"one training worker per preset: stage {args.stage}, {args.steps} step(s) at the preset's batch, "
        f"{args.threads} thread(s), CPU"
    )
    print(f"{'preset':<7} {'OCR':<12} {'batch':>5} {'built MiB':>10} {'peak MiB':>9}")
    for preset in args.presets.split(","):
        command = [
            sys.executable,
            __file__,
            "--child",
            preset,
            "--stage",
            str(args.stage),
            "--steps",
            str(args.steps),
            "--threads",
            str(args.threads),
        ]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"error: {preset}: {done.stderr.strip().splitlines()[-1]}", file=sys.stderr)
            return 2
        row = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{preset:<7} {row['ocr']:<12} {row['batch']:>5} {row['built']:10.0f} {row['peak']:9.0f}", flush=True)
    pair_bytes = (16 * 48 + 32 * 96) * 3
    print(
        f"+ decoded data cache: {pair_bytes / 1024:.1f} KiB per frame pair, {pair_bytes * 10_000 / MIB:.0f} MiB "
        "per 10,000 pairs (each worker holds the whole train split and its validation shard)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
