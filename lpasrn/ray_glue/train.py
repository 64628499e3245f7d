"""Each stage as one Ray Train `TorchTrainer` run named `<run>-stage<k>`.

The driver passes the previous stage's best checkpoint in `train_loop_config`; inside a worker,
`ray.train.get_checkpoint()` means "resume this stage" (a restarted worker group, or the same command run
again with the same name), so it wins over the seed.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import ray.train
import torch
from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer
from torch import nn

from experiments.errors import UserError
from lpasrn.config import LpasrnConfig
from lpasrn.models.checkpoints import CheckpointError
from lpasrn.training.checkpoint import load_state
from lpasrn.ray_glue.data import TRAIN_DATASET, ShardBatches, packed_train_dataset
from lpasrn.training.engine import streams_train_split, train_stage
from lpasrn.training.stages import StageSpec, ray_run_name


class RayTrainSession:
    """`TrainSession` on a Ray Train worker; `streamed_samples` > 0 when the driver streams the train split."""

    show_progress = False

    def __init__(self, streamed_samples: int = 0):
        context = ray.train.get_context()
        self.world_rank = context.get_world_rank()
        self.world_size = context.get_world_size()
        self.device = ray.train.torch.get_device()
        self.streamed_samples = streamed_samples

    def train_batches(self, batch_size: int, seed: int) -> ShardBatches | None:
        if not self.streamed_samples:
            return None
        shard = ray.train.get_dataset_shard(TRAIN_DATASET)
        return ShardBatches(shard, self.streamed_samples, self.world_size, batch_size, seed)

    def wrap_model(self, model: nn.Module) -> nn.Module:
        return ray.train.torch.prepare_model(model)

    def resume_state(self) -> dict[str, Any] | None:
        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None:
            return None
        with checkpoint.as_directory() as folder:
            return load_state(folder)

    def report(self, metrics: dict[str, float], checkpoint_dir: Path | None) -> None:
        checkpoint = ray.train.Checkpoint.from_directory(str(checkpoint_dir)) if checkpoint_dir else None
        ray.train.report(metrics, checkpoint=checkpoint)


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = LpasrnConfig.model_validate(loop_config["config"])
    # Ray sets OMP_NUM_THREADS=1 in workers; use the CPUs this worker was actually given.
    torch.set_num_threads(cfg.run.cpus_per_worker)
    session = RayTrainSession(loop_config.get("streamed_samples", 0))
    train_stage(cfg, loop_config["stage"], loop_config["stage_dir"], session, loop_config.get("seed_checkpoint"))


class RayTrainLauncher:
    """Runs a stage on `run.num_workers` Ray Train workers (CPU or GPU), with `run.max_failures` restarts."""

    def trainer(self, cfg: LpasrnConfig, stage: StageSpec, stage_dir: str,
                seed_checkpoint: str | None) -> TorchTrainer:
        metric, mode = stage.primary_metric
        resources = {"CPU": cfg.run.cpus_per_worker}
        datasets, streamed_samples = {}, 0
        if streams_train_split(cfg, stage):  # a packed dataset: Ray Data streams the train split to the workers
            datasets[TRAIN_DATASET], streamed_samples = packed_train_dataset(cfg)
        return TorchTrainer(
            train_loop_per_worker,
            train_loop_config={"config": cfg.model_dump(mode="json"), "stage": stage.index,
                               "stage_dir": stage_dir, "seed_checkpoint": seed_checkpoint,
                               "streamed_samples": streamed_samples},
            datasets=datasets or None,
            scaling_config=ScalingConfig(num_workers=cfg.run.num_workers, use_gpu=cfg.run.use_gpu,
                                         resources_per_worker=resources),
            run_config=RunConfig(
                name=ray_run_name(cfg.run.name, stage), storage_path=cfg.run.storage_uri(),
                failure_config=FailureConfig(max_failures=cfg.run.max_failures),
                checkpoint_config=CheckpointConfig(num_to_keep=2, checkpoint_score_attribute=metric,
                                                   checkpoint_score_order=mode)),
        )

    def run_stage(self, cfg: LpasrnConfig, stage: StageSpec, stage_dir: str, seed_checkpoint: str | None) -> None:
        try:
            self.trainer(cfg, stage, stage_dir, seed_checkpoint).fit()
        except ray.train.WorkerGroupError as err:
            user_error = _user_error_in(err.worker_failures.values())
            if user_error is not None:  # something the user can fix: one line, not a wall of worker tracebacks
                raise UserError(str(user_error)) from None
            raise


def _user_error_in(failures) -> UserError | CheckpointError | None:
    for failure in failures:
        while failure is not None:
            if isinstance(failure, (UserError, CheckpointError)):
                return failure
            failure = getattr(failure, "cause", None) or failure.__cause__
    return None
