"""Ray Train against a plain loop doing the same work: epoch time, start-up, and a whole pipeline's wall time.

    python bench/train_overhead.py [--tracks 40] [--epochs 5] [--threads 2] [--rounds 1]
        [--pipeline-tracks 2000 --frames 2] [--no-pipeline]

On the same rendered plates and at the same torch threads (the plain loop sets them as a worker with
`run.cpus_per_worker` does):
1. Steady state: stage 1 (L1 warm-up) of the tiny preset for `--epochs` epochs as a plain loop (`--local`), as a
   plain loop again while an idle local Ray runs alongside (what Ray's own processes cost a loop on this machine),
   and as a Ray Train run with one worker. Per runner: the median over the epochs after the first of the training
   time (`train_seconds`) and of the whole epoch (the gap between consecutive `finished_at`: training,
   validation, checkpoints and the report), and each against the plain loop (goal <= 1.03). `--rounds R`
   repeats the three runs R times in turn (Ray started and stopped each round) and prints every round's ratios
   and their median, so that a machine whose speed drifts over minutes does not decide the ratio.
2. Start-up and the pipeline: the tiny preset's five stages with its own epochs, each as a user runs it: a whole
   `lpasrn train --local` and `lpasrn train` (a private local Ray) in a fresh process, on `--pipeline-tracks` tracks
   of `--frames` frames (default: the steady-state plates; `--pipeline-tracks 2000 --frames 2` is the data
   `make demo` trains the preset on). Start-up = from the launch to the first stage's trainer starting (`started_at`
   in its metrics.json: imports, and under Ray `ray.init` and Ray Train's start); Ray Train runs per pipeline; the
   commands' wall times, Ray against `--local` (goal <= 1.10).
3. Per stage of the two pipelines: training samples/s of the last epoch and the stage's seconds, Ray against
   `--local` (where the pipeline's difference goes).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from lpasrn.config import load_lpasrn_config  # noqa: E402
from lpasrn.data.synth import SynthConfig, render_dataset  # noqa: E402
from lpasrn.training.pipeline import LocalLauncher, run_pipeline  # noqa: E402


def overrides(root: Path, storage: Path, name: str, threads: int, epochs: list[int] | None = None) -> list[str]:
    stages = [f"stages.{i}.epochs={e}" for i, e in enumerate(epochs)] if epochs is not None else []
    return [
        f"data.root={root}",
        f"data.split_file={root / 'split.txt'}",
        f"run.storage_path={storage}",
        f"run.name={name}",
        f"run.cpus_per_worker={threads}",
        "run.num_workers=1",
    ] + stages


def summaries(run_dir: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(run_dir.glob("stage*/metrics.json"))]


def timed_pipeline(cfg, launcher, stages=None, seed=None) -> tuple[float, float, list[dict]]:
    """(wall seconds, seconds from the launch to the first stage's trainer starting, the stages' summaries)."""
    started = time.time()
    run_pipeline(cfg, launcher, stages=stages, init_checkpoint=seed)
    wall = time.time() - started
    found = summaries(Path(cfg.run.storage_uri()) / cfg.run.name)
    return wall, min(summary["started_at"] for summary in found) - started, found


def timed_command(settings: list[str], run_dir: Path, threads: int, local: bool) -> tuple[float, float, list[dict]]:
    """`lpasrn train` of the whole pipeline as a user runs it, a fresh process (imports and, under Ray, `ray.init`
    included): (wall seconds, seconds from the launch to the first stage's trainer starting, the stages' summaries).
    `--local` gets `threads` torch threads through OMP_NUM_THREADS; a Ray worker takes `run.cpus_per_worker`."""
    runner = ["--local"] if local else []
    command = [sys.executable, "-m", "lpasrn", "train", *runner, "--config", "lp_asrn_tiny", "--set", *settings]
    env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}  # a private Ray, as the bench's
    if local:
        env["OMP_NUM_THREADS"] = str(threads)
    log = run_dir.parent / f"{run_dir.name}.log"
    started = time.time()
    with open(log, "w") as out:
        result = subprocess.run(command, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    wall = time.time() - started
    if result.returncode != 0:
        tail = log.read_text()[-3000:]
        raise SystemExit(f"lpasrn train {' '.join(runner)} failed (exit {result.returncode}):\n{tail}")
    found = summaries(run_dir)
    return wall, min(summary["started_at"] for summary in found) - started, found


def steady(history: list[dict]) -> tuple[float, float]:
    """Median training seconds and median whole-epoch seconds, over the epochs after the first."""
    train = [row["train_seconds"] for row in history][1:]
    ends = [row["finished_at"] for row in history]
    whole = [later - earlier for earlier, later in zip(ends, ends[1:])]
    return statistics.median(train), statistics.median(whole)


def print_steady(rounds: list[dict[str, tuple[float, float]]], args: argparse.Namespace) -> None:
    """Per round, each runner's (train s, epoch s) and its ratios to that round's plain loop; then the medians."""
    print(
        f"1. stage 1 of lp_asrn_tiny, {args.tracks} tracks, {args.epochs} epochs, {args.threads} torch threads "
        f"({os.cpu_count()} CPUs); medians over epochs 2..{args.epochs}; {len(rounds)} round(s)"
    )
    print(f"{'round':>5} {'runner':<22} {'train s':>8} {'ratio':>6} {'epoch s':>8} {'ratio':>6}")
    ratios: dict[str, list[tuple[float, float]]] = {}
    for index, runs in enumerate(rounds):
        base_train, base_epoch = runs["plain loop"]
        for name, (train, epoch) in runs.items():
            train_ratio, epoch_ratio = train / base_train, epoch / base_epoch
            ratios.setdefault(name, []).append((train_ratio, epoch_ratio))
            print(f"{index:>5} {name:<22} {train:8.3f} {train_ratio:6.3f} {epoch:8.3f} {epoch_ratio:6.3f}")
    if len(rounds) > 1:
        for name, pairs in ratios.items():
            train_ratio = statistics.median(pair[0] for pair in pairs)
            epoch_ratio = statistics.median(pair[1] for pair in pairs)
            print(f"{'median':>5} {name:<22} {'':>8} {train_ratio:6.3f} {'':>8} {epoch_ratio:6.3f}")


def stage_seconds(summary: dict) -> float:
    """From the stage's trainer starting to its last epoch's end: data loading, epochs, validation and reports."""
    return summary["history"][-1]["finished_at"] - summary["started_at"]


def print_stages(local: list[dict], under_ray: list[dict]) -> None:
    """Per stage, both runners: training samples/s (last epoch) and the stage's seconds, Ray against --local."""
    print("\n3. per stage: training samples/s (last epoch) and seconds, --local and Ray Train x1")
    print(f"{'stage':<22} {'local/s':>8} {'Ray/s':>8} {'ratio':>6} {'local s':>8} {'Ray s':>8} {'ratio':>6}")
    for mine, theirs in zip(local, under_ray):
        rates = [summary["history"][-1].get("train_samples_per_s") for summary in (mine, theirs)]
        seconds = [stage_seconds(summary) for summary in (mine, theirs)]
        name = f"stage{mine['stage']}-{mine['name']}"
        if None in rates:
            rate_columns = f"{'validation only':>24}"
        else:
            rate_columns = f"{rates[0]:8.1f} {rates[1]:8.1f} {rates[0] / rates[1]:6.3f}"
        print(f"{name:<22} {rate_columns} {seconds[0]:8.1f} {seconds[1]:8.1f} {seconds[1] / seconds[0]:6.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tracks", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=5, help="stage-1 epochs of the steady-state runs")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the loop and of the Ray worker")
    parser.add_argument("--pipeline-tracks", type=int, help="tracks of the pipeline runs (default: --tracks)")
    parser.add_argument("--frames", type=int, default=5, help="frames per track of the pipeline runs' plates")
    parser.add_argument("--rounds", type=int, default=1, help="steady-state rounds, the three runners in turn")
    parser.add_argument("--no-pipeline", action="store_true", help="steady state only (part 1)")
    args = parser.parse_args(argv)
    if args.tracks < 4 or args.epochs < 3 or args.threads < 1 or args.rounds < 1:
        print(
            "error: --tracks must be at least 4, --epochs at least 3, --threads and --rounds at least 1",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        root, storage = Path(tmp) / "plates", Path(tmp) / "runs"
        render_dataset(root, SynthConfig(tracks=args.tracks, seed=0))
        cfg = lambda name, epochs=None: load_lpasrn_config(  # noqa: E731
            "lp_asrn_tiny", overrides(root, storage, name, args.threads, epochs)
        )
        seed = str(run_pipeline(cfg("seed", [0, 0, 0, 0, 0]), LocalLauncher(), stages=[0]))  # an untrained seed
        one_stage = [0, args.epochs, 0, 0, 0]

        import ray

        from lpasrn.ray_glue.cluster import connect
        from lpasrn.ray_glue.train import RayTrainLauncher

        rounds: list[dict[str, tuple[float, float]]] = []
        for index in range(args.rounds):
            if ray.is_initialized():
                ray.shutdown()
            runs = {"plain loop": timed_pipeline(cfg(f"plain-{index}", one_stage), LocalLauncher(), [1], seed)}
            connect()
            idle = cfg(f"plain-ray-idle-{index}", one_stage)
            runs["plain loop, Ray idle"] = timed_pipeline(idle, LocalLauncher(), [1], seed)
            runs["Ray Train x1"] = timed_pipeline(cfg(f"ray-{index}", one_stage), RayTrainLauncher(), [1], seed)
            rounds.append({name: steady(found[0]["history"]) for name, (_, _, found) in runs.items()})
        print_steady(rounds, args)
        if args.no_pipeline:
            return 0
        pipeline_root = root
        if args.pipeline_tracks is not None:
            pipeline_root = Path(tmp) / "pipeline-plates"
            render_dataset(pipeline_root, SynthConfig(tracks=args.pipeline_tracks, frames=args.frames, seed=0))
        ray.shutdown()  # each command as a user runs it: its own process, its own private Ray
        pipeline = lambda name: overrides(pipeline_root, storage, name, args.threads)  # noqa: E731
        local = timed_command(pipeline("pipeline-local"), storage / "pipeline-local", args.threads, local=True)
        under_ray = timed_command(pipeline("pipeline-ray"), storage / "pipeline-ray", args.threads, local=False)
        ray_runs = len(list(storage.glob("pipeline-ray-stage*")))  # Ray Train runs <name>-stage<k>[-<l>]

    epochs = [stage["history"][-1]["epoch"] for stage in local[2]]
    tracks = args.pipeline_tracks or args.tracks
    print(f"\n2. the five stages of lp_asrn_tiny (epochs {epochs}), {tracks} tracks, each a whole `lpasrn train`")
    print(f"{'command':<22} {'start-up s':>11} {'Ray runs':>9} {'wall s':>8} {'ratio':>6}")
    for name, (wall, start_up, _), runs in (("--local", local, 0), ("Ray Train x1", under_ray, ray_runs)):
        print(f"{name:<22} {start_up:11.1f} {runs:9d} {wall:8.1f} {wall / local[0]:6.3f}")

    print_stages(local[2], under_ray[2])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
