"""Ray Train overhead against a plain loop doing the same work, and training throughput per stage.

    python bench/train_overhead.py [--tracks 40] [--epochs 4] [--workers 1]

Runs stage 1 (L1 warm-up) of the tiny preset twice on the same synthetic plates: in this process
(`--local`, the plain loop) and as a Ray Train run on a local Ray with the same number of epochs. Prints the
steady-state epoch time of each (median over epochs after the first), their ratio, and the start-up seconds
(wall time not spent in epochs: Ray start, worker group, process group, data and model set-up). Then runs
each of the five stages for one epoch in the plain loop and prints training samples/s per stage.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lpasrn.config import load_lpasrn_config  # noqa: E402
from lpasrn.data.synth import SynthConfig, render_dataset  # noqa: E402
from lpasrn.training.pipeline import LocalLauncher, run_pipeline  # noqa: E402


def overrides(root: Path, storage: Path, name: str, epochs: list[int]) -> list[str]:
    return [f"data.root={root}", f"data.split_file={root / 'split.txt'}", f"run.storage_path={storage}",
            f"run.name={name}"] + [f"stages.{i}.epochs={e}" for i, e in enumerate(epochs)]


def timed_stage(cfg, launcher, stage: int, seed: str | None) -> tuple[float, list[dict]]:
    started = time.perf_counter()
    run_pipeline(cfg, launcher, stages=[stage], init_checkpoint=seed)
    wall = time.perf_counter() - started
    run_dir = Path(cfg.run.storage_uri()) / cfg.run.name
    history = json.loads(next(run_dir.glob(f"stage{stage}-*/metrics.json")).read_text())["history"]
    return wall, history


def epoch_times(history: list[dict]) -> list[float]:
    return [row["train_seconds"] for row in history]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1, help="Ray Train workers")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

    with tempfile.TemporaryDirectory() as tmp:
        root, storage = Path(tmp) / "plates", Path(tmp) / "runs"
        render_dataset(root, SynthConfig(tracks=args.tracks, seed=0))
        seed_cfg = load_lpasrn_config("lp_asrn_tiny", overrides(root, storage, "seed", [0, 0, 0, 0, 0]))
        seed = str(run_pipeline(seed_cfg, LocalLauncher(), stages=[0]))  # untrained seed for stage 1

        epochs = [0, args.epochs, 0, 0, 0]
        plain_cfg = load_lpasrn_config("lp_asrn_tiny", overrides(root, storage, "plain", epochs))
        plain_wall, plain_history = timed_stage(plain_cfg, LocalLauncher(), 1, seed)

        from lpasrn.ray_glue.cluster import connect
        from lpasrn.ray_glue.train import RayTrainLauncher

        ray_started = time.perf_counter()
        connect()
        ray_init = time.perf_counter() - ray_started
        ray_cfg = load_lpasrn_config("lp_asrn_tiny", overrides(root, storage, "ray", epochs) +
                                     [f"run.num_workers={args.workers}",
                                      f"run.cpus_per_worker={max(1, (os.cpu_count() or 1) // args.workers)}"])
        ray_wall, ray_history = timed_stage(ray_cfg, RayTrainLauncher(), 1, seed)

        rows = []
        for name, wall, history, extra in (("plain loop", plain_wall, plain_history, 0.0),
                                           (f"Ray Train x{args.workers}", ray_wall, ray_history, ray_init)):
            times = epoch_times(history)
            steady = statistics.median(times[1:] or times)
            startup = wall + extra - sum(times)
            rows.append((name, steady, startup, wall + extra))
        print(f"stage 1 (warm-up) of lp_asrn_tiny, {args.tracks} tracks, {args.epochs} epochs, "
              f"{os.cpu_count()} CPUs")
        print(f"{'runner':<16} {'epoch s':>9} {'ratio':>7} {'start-up s':>11} {'total s':>9}")
        base = rows[0][1]
        for name, steady, startup, total in rows:
            print(f"{name:<16} {steady:9.2f} {steady / base:7.2f} {startup:11.1f} {total:9.1f}")

        print("\nplain-loop training throughput per stage (1 epoch each)")
        all_cfg = load_lpasrn_config("lp_asrn_tiny", overrides(root, storage, "stages", [1, 1, 1, 1, 1]))
        run_pipeline(all_cfg, LocalLauncher())
        print(f"{'stage':<22} {'samples/s':>10}")
        for metrics in sorted((storage / "stages").glob("stage*/metrics.json")):
            summary = json.loads(metrics.read_text())
            print(f"{metrics.parent.name:<22} {summary['history'][-1]['train_samples_per_s']:10.1f}")


if __name__ == "__main__":
    main()
