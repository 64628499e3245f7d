"""The GPU path, measured: samples/s and model FLOP utilisation per speed switch, and DDP scaling through Ray Train.

    python bench/gpu.py [--batch 64] [--steps 20] [--presets max,light] [--max-gpus N]
    python bench/gpu.py --device cpu --presets tiny --batch 4 --steps 1 --variants fp32,bf16   # a smoke run

Without a CUDA GPU (and without `--device cpu`) it prints one line and exits 0. With one, for each preset, one
stage-2 training step (generator trained, PARSeq frozen but back-propagated through: L1 + LCOFL, AdamW) at
`--batch`, under each cumulative `train:` switch: fp32 (TF32 off), `train.bf16`, + `train.channels_last`, +
`train.compile`. FLOPs per step are counted once per preset with `torch.utils.flop_counter` (matrix products,
convolutions, attention: forward and backward); MFU = counted FLOP/s / the device's dense peak for the step's
dtype (fp32 without tensor cores, or bf16). Then DDP on 1, 2, 4, ... GPUs (up to all of them) through Ray Train,
`--batch` per GPU with the bf16 + channels-last switches: samples/s per GPU. Budget: ~5-8 minutes on one H200.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from train_step import PRESETS, preset_config, training_step  # noqa: E402

STAGE = 2  # lcofl: the stage with most epochs, generator trained through the frozen OCR
# Dense peak TFLOP/s per device (fp32 on CUDA cores, bf16 on tensor cores), from the vendors' data sheets.
PEAK_TFLOPS = {
    "H200": (67.0, 989.4),
    "H100": (67.0, 989.4),
    "A100": (19.5, 312.0),
    "L40S": (91.6, 362.1),
    "A10G": (31.2, 125.0),
    "L4": (30.3, 121.0),
}
VARIANTS = {
    "fp32": ["train.bf16=false"],
    "bf16": ["train.bf16=true"],
    "bf16+channels_last": ["train.bf16=true", "train.channels_last=true"],
    "bf16+channels_last+compile": ["train.bf16=true", "train.channels_last=true", "train.compile=true"],
}
DDP_VARIANT = "bf16+channels_last"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(step, steps: int, warmup: int, device: torch.device) -> float:
    """Seconds per step after `warmup` untimed steps (compilation happens there)."""
    for _ in range(warmup):
        step()
    synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return (time.perf_counter() - started) / steps


def step_flops(preset: str, batch: int, device: torch.device) -> int:
    step = training_step(preset_config(preset, VARIANTS["fp32"]), STAGE, batch, device)
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def peaks(device: torch.device, override: str | None) -> tuple[float, float] | None:
    """(fp32, bf16) dense peak FLOP/s of the device, or None when unknown (MFU then not printed)."""
    if override:
        fp32, bf16 = (float(value) * 1e12 for value in override.split(","))
        return fp32, bf16
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    found = next((value for key, value in PEAK_TFLOPS.items() if key in name), None)
    return (found[0] * 1e12, found[1] * 1e12) if found else None


def switch_rows(args, device: torch.device, peak: tuple[float, float] | None) -> None:
    print(f"{'preset':<7} {'switches':<28} {'ms/step':>9} {'samples/s':>10} {'TFLOP/s':>8} {'MFU':>6}")
    for preset in args.presets:
        flops = step_flops(preset, args.batch, device)
        for variant in args.variants:
            step = training_step(preset_config(preset, VARIANTS[variant]), STAGE, args.batch, device)
            seconds = timed(step, args.steps, args.warmup + (2 if "compile" in variant else 0), device)
            rate = flops / seconds
            mfu = f"{rate / peak[0 if variant == 'fp32' else 1]:6.1%}" if peak else "   n/a"
            print(
                f"{preset:<7} {variant:<28} {seconds * 1e3:9.1f} {args.batch / seconds:10.1f} {rate / 1e12:8.2f} {mfu}",
                flush=True,
            )
            del step
            if device.type == "cuda":
                torch.cuda.empty_cache()
        print(f"{preset:<7} {'(FLOPs per step)':<28} {flops / 1e9:9.1f} GFLOP at batch {args.batch}", flush=True)


def ddp_worker(config: dict) -> None:
    """One Ray Train worker: the preset's step under DDP, timed; every rank reports its own samples/s."""
    import ray.train
    import ray.train.torch

    sys.path.insert(0, config["bench"])
    from train_step import preset_config as cfg_of
    from train_step import training_step as step_of

    device = ray.train.torch.get_device()
    step = step_of(
        cfg_of(config["preset"], VARIANTS[DDP_VARIANT]),
        STAGE,
        config["batch"],
        device,
        wrap=lambda model: ray.train.torch.prepare_model(model, move_to_device=False),
    )
    seconds = timed(step, config["steps"], config["warmup"], device)
    ray.train.report({"samples_per_s": config["batch"] / seconds})


def ddp_rows(args, use_gpu: bool) -> None:
    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    available = torch.cuda.device_count() if use_gpu else 1
    counts = sorted({n for n in (1, 2, 4, 8, 16) if n <= available} | {min(available, args.max_gpus)})
    ray.init(
        address="local",
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}},
    )
    print(f"\nDDP through Ray Train, {DDP_VARIANT}, batch {args.batch} per {'GPU' if use_gpu else 'worker'}")
    print(f"{'preset':<7} {'workers':>7} {'samples/s':>10} {'per worker':>11} {'scaling':>8}")
    try:
        for preset in args.presets:
            single = None
            for count in counts:
                trainer = TorchTrainer(
                    ddp_worker,
                    train_loop_config={
                        "preset": preset,
                        "batch": args.batch,
                        "steps": args.steps,
                        "warmup": args.warmup,
                        "bench": str(REPO / "bench"),
                    },
                    scaling_config=ScalingConfig(num_workers=count, use_gpu=use_gpu),
                    run_config=RunConfig(name=f"gpu-bench-{preset}-{count}-{os.getpid()}", storage_path=args.storage),
                )
                per_worker = trainer.fit().metrics["samples_per_s"]
                single = single or per_worker
                print(
                    f"{preset:<7} {count:>7} {per_worker * count:10.1f} {per_worker:11.1f} {per_worker / single:8.2f}",
                    flush=True,
                )
    finally:
        ray.shutdown()


def parse_args(argv: list[str] | None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (a smoke run of the same code)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per row")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per row (+2 with compile)")
    parser.add_argument("--presets", default="max,light", help=f"comma-separated: {', '.join(PRESETS)}")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated switch sets")
    parser.add_argument("--max-gpus", type=int, default=8, help="largest DDP world size")
    parser.add_argument("--no-ddp", action="store_true", help="skip the Ray Train DDP rows")
    parser.add_argument("--peak-tflops", help="FP32,BF16 dense peak TFLOP/s of an unlisted device")
    parser.add_argument("--storage", default="/tmp/glyphray-gpu-bench", help="Ray Train run folder")
    args = parser.parse_args(argv)
    args.presets, args.variants = args.presets.split(","), args.variants.split(",")
    bad = [name for name in args.presets if name not in PRESETS] + [v for v in args.variants if v not in VARIANTS]
    if bad or min(args.batch, args.steps, args.max_gpus) < 1 or args.device not in ("cuda", "cpu"):
        parser.exit(
            2,
            f"error: unknown preset or variant {bad}, or a count below 1, or --device not cuda/cpu; "
            f"presets {list(PRESETS)}, variants {list(VARIANTS)}\n",
        )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench/gpu.py: no CUDA GPU here, nothing measured (run it on a GPU machine; --device cpu smoke-tests it)")
        return 0
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # fp32 means fp32
    peak = peaks(device, args.peak_tflops)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(
        f"{name}: stage {STAGE} training step (L1 + LCOFL, AdamW), batch {args.batch}, {args.steps} timed steps; "
        f"peak {'unknown' if peak is None else f'{peak[0] / 1e12:g}/{peak[1] / 1e12:g} TFLOP/s fp32/bf16'}",
        flush=True,
    )
    switch_rows(args, device, peak)
    if not args.no_ddp:
        ddp_rows(args, use_gpu=device.type == "cuda")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
