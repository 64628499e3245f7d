"""glyphray's SwinIR generator against an independent reimplementation of the reference SwinIR, side by side.

    python bench/generator_vs_reference.py [--batch 8] [--rounds 5] [--threads 1] [--presets lightweight,maximum]

For the lightweight (window 8, 16x48 input) and the seed's maximum (window 6, input padded to 18x48) presets, both
networks get the same configuration (Character Pyramid Attention off, no bicubic skip), the same weights (glyphray's,
loaded into `bench/reference_swinir.py`, which must then give the same image), the same threads and the same batch.
One training step = forward + L1 loss + backward, timed in CPU seconds of this process (at one thread that is
the step's cost even on a shared machine). Steps alternate between the networks for `--rounds` rounds after one
untimed step each, so any drift falls on all alike; the median per network is printed.
Then glyphray's generator with Character Pyramid Attention on, against the same generator without it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from reference_swinir import ReferenceSwinIR  # noqa: E402  (bench/ is on sys.path as the script's folder)

from lpasrn.models import GENERATOR_PRESETS, SwinIRGenerator  # noqa: E402

LR_SIZE, SCALE = (16, 48), 2


PRESETS = {"lightweight": "swinir_lightweight", "maximum": "swinir_maximum"}


def ours(preset: str, pyramid: bool) -> SwinIRGenerator:
    return GENERATOR_PRESETS[PRESETS[preset]].build(SCALE, bicubic_skip=False, use_pyramid_attention=pyramid)


def reference(preset: str) -> ReferenceSwinIR:
    cfg = GENERATOR_PRESETS[PRESETS[preset]]
    return ReferenceSwinIR(
        SCALE, cfg.embed_dim, [cfg.num_blocks_per_rstb] * cfg.num_rstb, cfg.num_heads, cfg.window_size, cfg.mlp_ratio
    )


def train_step(model: nn.Module, lr: torch.Tensor, hr: torch.Tensor) -> float:
    """CPU seconds this process spent on one forward + L1 + backward: unlike wall time, not inflated while other
    processes hold the cores (a shared machine), and the same as wall time at one thread on an idle one."""
    model.zero_grad(set_to_none=True)
    started = time.process_time()
    (model(lr) - hr).abs().mean().backward()
    return time.process_time() - started


def alternate(models: dict[str, nn.Module], lr: torch.Tensor, hr: torch.Tensor, rounds: int) -> dict[str, float]:
    """Median seconds per step of each model, steps interleaved round by round after one warm-up step each."""
    times: dict[str, list[float]] = {name: [] for name in models}
    for model in models.values():
        train_step(model, lr, hr)
    for _ in range(rounds):
        for name, model in models.items():
            times[name].append(train_step(model, lr, hr))
    return {name: statistics.median(values) for name, values in times.items()}


def compare(preset: str, batch: int, rounds: int) -> list[tuple[str, str, float, float]]:
    torch.manual_seed(0)
    lr = torch.rand(batch, 3, *LR_SIZE)
    hr = torch.rand(batch, 3, LR_SIZE[0] * SCALE, LR_SIZE[1] * SCALE)
    plain, pyramid, ref = ours(preset, False), ours(preset, True), reference(preset)
    ref.load_state_dict(plain.state_dict())
    with torch.no_grad():
        difference = (plain(lr) - ref(lr)).abs().max().item()
    if difference > 1e-4:
        raise SystemExit(f"{preset}: the reference computes another image (max difference {difference:.2e})")
    window = GENERATOR_PRESETS[PRESETS[preset]].window_size
    seconds = alternate({"reference": ref, "glyphray": plain, "glyphray + CPA": pyramid}, lr, hr, rounds)
    base = seconds["reference"]
    label = f"{preset} (window {window})"
    return [(label, name, value * 1e3, value / base) for name, value in seconds.items()] + [
        (
            label,
            "CPA cost (+CPA / glyphray)",
            (seconds["glyphray + CPA"] - seconds["glyphray"]) * 1e3,
            seconds["glyphray + CPA"] / seconds["glyphray"],
        )
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=8, help="samples per step, the same for every network")
    parser.add_argument("--rounds", type=int, default=5, help="timed steps per network (interleaved)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads, the same for every network")
    parser.add_argument("--presets", default="lightweight,maximum", help="comma-separated generator presets")
    args = parser.parse_args(argv)
    presets = [name for name in args.presets.split(",") if name]
    unknown = [name for name in presets if name not in PRESETS]
    if unknown or args.batch < 1 or args.rounds < 1 or args.threads < 1:
        print(
            f"error: --presets takes {', '.join(PRESETS)}; --batch, --rounds and --threads must be at least 1",
            file=sys.stderr,
        )
        return 2
    torch.set_num_threads(args.threads)
    print(
        f"forward+backward (L1) at LR {LR_SIZE[0]}x{LR_SIZE[1]} x{SCALE}, batch {args.batch}, "
        f"{args.threads} thread(s), median CPU time of {args.rounds} interleaved steps; same weights, outputs "
        "checked equal"
    )
    print(f"{'preset':<22} {'network':<28} {'CPU ms':>9} {'ratio':>7}")
    for preset in presets:
        for label, name, ms, ratio in compare(preset, args.batch, args.rounds):
            print(f"{label:<22} {name:<28} {ms:9.1f} {ratio:7.3f}", flush=True)
    print("ratio: against the reference; for the CPA row, glyphray with CPA against glyphray without")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
