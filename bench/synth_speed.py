"""How fast the plate synthesiser is on one core, and where the time goes (HR scene vs LR degradation vs I/O).

    python bench/synth_speed.py [--tracks 50] [--frames 5] [--scale 2]

Pins BLAS/OpenMP to one thread before numpy loads, so numbers compare across machines with different core counts.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from lpasrn.data.synth import SynthConfig, degrade, plan_track, render_dataset, render_hr_frames  # noqa: E402


def time_pieces(cfg: SynthConfig) -> tuple[float, float]:
    """Seconds spent drawing HR frames and degrading them to LR, over the same tracks render_dataset draws."""
    hr_seconds = lr_seconds = 0.0
    for index in range(cfg.tracks):
        plan, rng = plan_track(cfg, index)
        start = time.perf_counter()
        hr_frames, _ = render_hr_frames(plan.text, plan.layout, cfg, rng)
        middle = time.perf_counter()
        for frame in hr_frames:
            degrade(frame, cfg.scale, rng)
        hr_seconds += middle - start
        lr_seconds += time.perf_counter() - middle
    return hr_seconds, lr_seconds


def time_dataset(cfg: SynthConfig) -> float:
    """Seconds for a full render_dataset run (drawing, degrading, PNG/JSON writing, split file, rename)."""
    with tempfile.TemporaryDirectory(prefix="synth_speed.") as folder:
        start = time.perf_counter()
        render_dataset(Path(folder) / "plates", cfg)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=50)
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--scale", type=int, default=2, choices=(2, 3, 4))
    args = parser.parse_args()
    hr_size = (48, 96) if args.scale == 3 else (32, 96)  # the default 32x96 does not divide by 3
    cfg = SynthConfig(tracks=args.tracks, frames=args.frames, scale=args.scale, hr_size=hr_size)
    time_pieces(SynthConfig(tracks=2, hr_size=hr_size, scale=args.scale))  # warm font and glyph caches untimed
    total = time_dataset(cfg)
    hr_seconds, lr_seconds = time_pieces(cfg)
    per_track_ms = 1000 / cfg.tracks
    rows = [
        ("tracks/s", f"{cfg.tracks / total:.1f}"),
        ("images/s", f"{cfg.tracks * cfg.frames * 2 / total:.1f}"),
        ("ms per track (render_dataset)", f"{total * per_track_ms:.1f}"),
        ("  HR scene rendering", f"{hr_seconds * per_track_ms:.1f}"),
        ("  LR degradation", f"{lr_seconds * per_track_ms:.1f}"),
        ("  rest (PNG/JSON writing)", f"{(total - hr_seconds - lr_seconds) * per_track_ms:.1f}"),
    ]
    print(
        f"synthetic plates: {cfg.tracks} tracks x {cfg.frames} frames, HR {cfg.hr_size[0]}x{cfg.hr_size[1]}, "
        f"scale {cfg.scale}, 1 thread"
    )
    for name, value in rows:
        print(f"{name:<32}{value:>10}")


if __name__ == "__main__":
    main()
