"""Can the training loader feed a GPU? Its decoded samples/s against what the generator would consume on one.

    python bench/loader_vs_gpu.py [--tracks 400] [--epochs 3] [--threads 2] [--gpu-tflops 200] [--loader-workers N]

Consumption: the light and max generators' stage-1 training step (forward + L1 + backward + AdamW) on this CPU, in
samples/s, with its FLOPs counted (`torch.utils.flop_counter`); times a GPU factor = `--gpu-tflops` (what one GPU is
assumed to sustain on these small-channel matrices; default 200 TFLOP/s, ~20% of an H200's dense bf16 peak) / the
CPU's measured FLOP/s. `--gpu-samples-per-s` replaces the estimate with a figure `bench/gpu.py` measured on a GPU.
Loader: the train loader exactly as the engine builds it (`build_stage_data`: the preset's batch and
`data.loader_workers`) over rendered synthetic tracks, every epoch iterated to the end, with `data.cache_decoded`
off (PNG decoding each epoch) and on (decode once when the stage starts: that time is printed apart and counted in).
`--loader-workers` replaces the preset's `data.loader_workers` (0: batches fetched in the training process).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from train_step import preset_config, training_step  # noqa: E402

from lpasrn.data.synth import SynthConfig, render_dataset  # noqa: E402
from lpasrn.training.session import LocalSession  # noqa: E402
from lpasrn.training.stage_data import build_stage_data  # noqa: E402
from lpasrn.training.stages import stage_table  # noqa: E402


def consumption(preset: str, batch: int, steps: int) -> tuple[float, float]:
    """(samples/s, FLOPs per sample) of the generator's training step on this CPU."""
    step = training_step(preset_config(preset), 1, batch, torch.device("cpu"))
    with FlopCounterMode(display=False) as counter:
        step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - started), counter.get_total_flops() / batch


def loader_rate(root: Path, cache: bool, epochs: int, workers: int | None) -> tuple[float, float, list[float]]:
    """(set-up seconds, samples/s over all epochs with set-up counted in, samples/s of each epoch)."""
    overrides = [
        f"data.root={root}",
        f"data.split_file={root / 'split.txt'}",
        f"data.cache_decoded={str(cache).lower()}",
    ]
    cfg = preset_config("light", overrides + ([] if workers is None else [f"data.loader_workers={workers}"]))
    started = time.perf_counter()
    data = build_stage_data(cfg, stage_table(cfg)[1], LocalSession(root, show_progress=False))
    setup = time.perf_counter() - started
    rates, total = [], 0
    for epoch in range(epochs):
        data.train_sampler.set_epoch(epoch)
        epoch_started, seen = time.perf_counter(), 0
        for batch in data.train_loader:
            seen += len(batch["lr"])
        rates.append(seen / (time.perf_counter() - epoch_started))
        total += seen
    return setup, total / (time.perf_counter() - started), rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tracks", type=int, default=400, help="synthetic tracks (5 frame pairs each)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the training process")
    parser.add_argument("--steps", type=int, default=2, help="timed generator steps per preset")
    parser.add_argument("--gpu-tflops", type=float, default=200.0, help="TFLOP/s one GPU is assumed to sustain")
    parser.add_argument("--gpu-samples-per-s", type=float, help="measured GPU consumption (bench/gpu.py), light")
    parser.add_argument("--loader-workers", type=int, help="data.loader_workers instead of the preset's")
    args = parser.parse_args(argv)
    if min(args.tracks, args.epochs, args.threads, args.steps) < 1 or args.gpu_tflops <= 0:
        print("error: --tracks, --epochs, --threads, --steps and --gpu-tflops must be positive", file=sys.stderr)
        return 2
    if args.loader_workers is not None and args.loader_workers < 0:
        print("error: --loader-workers must be >= 0", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "plates"
        render_dataset(root, SynthConfig(tracks=args.tracks, seed=0))
        loaders = {cache: loader_rate(root, cache, args.epochs, args.loader_workers) for cache in (False, True)}
    cfg = preset_config("light")
    workers = cfg.data.loader_workers if args.loader_workers is None else args.loader_workers
    workers_text = "null (0 for a decoded split, 2 from files)" if workers is None else str(workers)
    print(
        f"train loader: {args.tracks} synthetic tracks, light preset batch {cfg.data.batch_size}, "
        f"data.loader_workers={workers_text}, {args.epochs} epochs, {args.threads} torch threads"
    )
    print(f"{'data.cache_decoded':<20} {'set-up s':>9} {'samples/s (all)':>16} {'per epoch':>24}")
    for cache, (setup, rate, rates) in loaders.items():
        print(f"{str(cache).lower():<20} {setup:9.2f} {rate:16.0f} {' '.join(f'{r:7.0f}' for r in rates):>24}")
    steady = {cache: values[2][-1] for cache, values in loaders.items()}
    print(
        f"\ngenerator consumption (stage-1 step, batch {cfg.data.batch_size}); GPU factor = {args.gpu_tflops:g} "
        "TFLOP/s / this CPU's measured FLOP/s"
    )
    print(
        f"{'preset':<7} {'CPU samples/s':>13} {'GFLOP/sample':>13} {'GPU factor':>10} {'GPU samples/s':>14} "
        f"{'loader/GPU off':>15} {'loader/GPU on':>14}"
    )
    for preset in ("light", "max"):
        rate, flops = consumption(preset, preset_config(preset).data.batch_size, args.steps)
        factor = args.gpu_tflops * 1e12 / (rate * flops)
        gpu = args.gpu_samples_per_s if (args.gpu_samples_per_s and preset == "light") else rate * factor
        print(
            f"{preset:<7} {rate:13.2f} {flops / 1e9:13.2f} {factor:10.0f} {gpu:14.0f} "
            f"{steady[False] / gpu:15.2f} {steady[True] / gpu:14.2f}",
            flush=True,
        )
    print("loader/GPU: the loader's last (steady) epoch against the GPU's consumption; the goal is >= 5")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
