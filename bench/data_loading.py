"""Samples/s into a training loop: the folder reader against Ray Data over Parquet shards in a bucket.

    python bench/data_loading.py [--tracks 200] [--epochs 2] [--batch-size 32] [--workers 1,2]

Renders synthetic tracks, packs them (`lpasrn pack`) into a bucket on a local S3 server (moto, from the `test`
extra), and runs the same Ray Train loop for each source and worker count: (a) the folder reader, a DataLoader over
`PlateSRDataset` with a `DistributedSampler` (what a folder-based stage does), and (b) Ray Data streaming the
shards (`read_parquet` + decoding in Ray Data tasks, `get_dataset_shard` in the workers: what a bucket-based stage
does). The loop only moves each batch's tensors, so what is timed is the data, not the model. Prints samples/s of
the last epoch (all workers together), side by side, and the ratio Ray Data / folder per worker count.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lpasrn.config import load_lpasrn_config  # noqa: E402
from lpasrn.data.packed import pack_dataset  # noqa: E402
from lpasrn.data.synth import SynthConfig, render_dataset  # noqa: E402


def loop_per_worker(config: dict) -> None:
    """Iterate the train split `epochs` times; report the last epoch's samples/s over all workers."""
    import ray.train
    import torch
    import torch.distributed as dist
    from torch.utils.data import DataLoader, DistributedSampler

    from lpasrn.config import LpasrnConfig
    from lpasrn.data.plates import PlateSRDataset
    from lpasrn.data.splits import build_splits
    from lpasrn.ray_glue.data import TRAIN_DATASET, ShardBatches

    torch.set_num_threads(1)
    cfg = LpasrnConfig.model_validate(config["config"])
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    batch = cfg.data.batch_size
    if config["source"] == "folder":
        dataset = PlateSRDataset(build_splits(cfg.data.root)[0]["train"], cfg.data.lr_size, cfg.data.scale)
        sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=0)
        batches = DataLoader(dataset, batch_size=batch, sampler=sampler, drop_last=True, num_workers=0)
    else:
        sampler = batches = ShardBatches(
            ray.train.get_dataset_shard(TRAIN_DATASET), config["samples"], world, batch, seed=0
        )
    for epoch in range(config["epochs"]):
        sampler.set_epoch(epoch)
        started, seen = time.perf_counter(), 0
        for item in batches:  # touch both images, as a training step would
            seen += int(item["lr"].shape[0]) if float(item["hr"].mean()) >= 0 else 0
        totals = torch.tensor([float(seen), time.perf_counter() - started], dtype=torch.float64)
        if dist.is_available() and dist.is_initialized():
            count = totals[:1].clone()
            dist.all_reduce(count)
            seconds = totals[1:].clone()
            dist.all_reduce(seconds, op=dist.ReduceOp.MAX)
            totals = torch.cat([count, seconds])
        rate = float(totals[0] / max(float(totals[1]), 1e-9))
        ray.train.report({"epoch": epoch + 1, "samples": float(totals[0]), "samples_per_s": rate})
        if rank == 0:  # Ray Train V2 keeps metrics with checkpoints only; the driver reads this file
            Path(config["rate_file"]).write_text(f"{rate}\n")


def run(cfg, source: str, workers: int, epochs: int, storage: Path) -> float:
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from lpasrn.ray_glue.data import TRAIN_DATASET, packed_train_dataset

    datasets, samples = {}, 0
    if source == "ray_data":
        datasets[TRAIN_DATASET], samples = packed_train_dataset(cfg)
    trainer = TorchTrainer(
        loop_per_worker,
        train_loop_config={
            "config": cfg.model_dump(mode="json"),
            "source": source,
            "epochs": epochs,
            "samples": samples,
            "rate_file": str(storage / f"{source}-{workers}.rate"),
        },
        datasets=datasets or None,
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=False, resources_per_worker={"CPU": 1}),
        run_config=RunConfig(name=f"{source}-{workers}", storage_path=str(storage)),
    )
    storage.mkdir(parents=True, exist_ok=True)
    trainer.fit()
    return float((storage / f"{source}-{workers}.rate").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=2, help="the last one is timed")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", default="1,2", help="Ray Train worker counts, comma-separated")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    worker_counts = [int(n) for n in args.workers.split(",")]

    import socket

    import ray
    from moto.server import ThreadedMotoServer
    from pyarrow import fs

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        RAY_USAGE_STATS_ENABLED="0",
        PYTHONPATH=str(REPO),
    )
    fs.S3FileSystem(endpoint_override=os.environ["AWS_ENDPOINT_URL"], allow_bucket_creation=True).create_dir("bench")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "plates"
            render_dataset(root, SynthConfig(tracks=args.tracks, seed=0))
            started = time.perf_counter()
            summary = pack_dataset(root, "s3://bench/plates", shard_size=max(1, args.tracks // 8))
            print(
                f"packed {args.tracks} tracks into {len(summary.manifest.shards)} shards on the local S3 server "
                f"in {time.perf_counter() - started:.1f} s"
            )
            base = [f"data.batch_size={args.batch_size}", "data.split_file=null"]
            configs = {
                "folder": load_lpasrn_config("lp_asrn_tiny", [f"data.root={root}", *base[:1]]),
                "ray_data": load_lpasrn_config("lp_asrn_tiny", ["data.root=s3://bench/plates", *base]),
            }
            # Logical CPUs: a worker each and room for Ray Data's tasks, also on a 2-core machine.
            ray.init(
                num_cpus=max(4, max(worker_counts) + 2),
                include_dashboard=False,
                logging_level=logging.WARNING,
                log_to_driver=False,
            )
            rates = {
                (source, workers): run(cfg.with_absolute_paths(), source, workers, args.epochs, Path(tmp) / "runs")
                for workers in worker_counts
                for source, cfg in configs.items()
            }
            ray.shutdown()
    finally:
        server.stop()
    train_samples = summary.manifest.num_samples("train")
    print(f"\ntrain split: {train_samples} frame pairs, batch {args.batch_size}, epoch {args.epochs} timed")
    print(f"{'workers':>7}  {'folder reader':>14}  {'Ray Data (S3)':>14}  {'ratio':>6}")
    for workers in worker_counts:
        folder, streamed = rates[("folder", workers)], rates[("ray_data", workers)]
        print(f"{workers:>7}  {folder:>10.0f} /s  {streamed:>10.0f} /s  {streamed / folder:>5.2f}x")


if __name__ == "__main__":
    main()
