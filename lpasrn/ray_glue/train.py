"""A pipeline's stages as one Ray Train `TorchTrainer` run: `<run>-stage<k>` (one stage) or `<run>-stages<a>-<b>`.

One worker group trains every planned stage in turn, so a pipeline pays Ray Train's start-up (controller, worker
processes and their imports, the process group) once, not once per stage. The driver hands over the plan: each
stage's folder and initial checkpoint (the previous stage's best, a known path). Checkpoints live in one tree, the stage
folders: a restarted worker group skips the finished stages and resumes the interrupted one from its `last/`
checkpoint, exactly as `--local` does, so reports carry metrics only and Ray copies no checkpoint per epoch.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

import ray.data
import ray.train
import torch
from ray.train import FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer
from torch import nn

from experiments.errors import UserError
from lpasrn.config import LpasrnConfig
from lpasrn.models.checkpoints import CheckpointError
from lpasrn.ray_glue.data import TRAIN_DATASET, ShardBatches, packed_train_dataset
from lpasrn.ray_glue.report_pacing import POLL_MARGIN_S, ReportPacer, poll_interval_s
from lpasrn.training.engine import train_stages
from lpasrn.training.session import stage_folder_state
from lpasrn.training.stage_data import streams_train_split
from lpasrn.training.stages import PlannedStage, ray_run_name, stage_table


class RayTrainSession:
    """`TrainSession` on a Ray Train worker for one stage; `streamed_samples` > 0 when the driver streams its
    train split; `pacer` (shared by the run's stages) says which epochs Ray hears of."""

    show_progress = False

    def __init__(self, stage_dir: str, pacer: ReportPacer, streamed_samples: int = 0):
        context = ray.train.get_context()
        self.world_rank = context.get_world_rank()
        self.world_size = context.get_world_size()
        self.device = ray.train.torch.get_device()
        self.stage_dir, self.pacer, self.streamed_samples = stage_dir, pacer, streamed_samples

    def train_batches(self, batch_size: int, seed: int) -> ShardBatches | None:
        if not self.streamed_samples:
            return None
        shard = ray.train.get_dataset_shard(TRAIN_DATASET)
        return ShardBatches(shard, self.streamed_samples, self.world_size, batch_size, seed)

    def wrap_model(self, model: nn.Module) -> nn.Module:
        return ray.train.torch.prepare_model(model)

    def resume_state(self) -> dict[str, Any] | None:
        return stage_folder_state(self.stage_dir)

    def report(self, metrics: dict[str, float], last: bool) -> None:
        """Every rank makes the same reports (each is a barrier across ranks): rank 0's clock decides."""
        due = [self.pacer.due(last)]
        if self.world_size > 1:
            torch.distributed.broadcast_object_list(due, src=0, device=self.device)
        if due[0]:
            ray.train.report(metrics)
            self.pacer.reported()


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    _quiet_ray_train_logs()
    cfg = LpasrnConfig.model_validate(loop_config["config"])
    # Ray sets OMP_NUM_THREADS=1 in workers; use the CPUs this worker was actually given.
    torch.set_num_threads(cfg.run.cpus_per_worker)
    plan = [PlannedStage(**planned) for planned in loop_config["plan"]]
    streamed = loop_config.get("streamed_samples", {})
    pacer = ReportPacer(poll_interval_s() + POLL_MARGIN_S)
    train_stages(
        cfg, plan, lambda planned: RayTrainSession(planned.stage_dir, pacer, streamed.get(str(planned.index), 0))
    )


def _quiet_ray_train_logs() -> None:
    """Our epoch lines say it all: Ray Train's INFO lines repeat each report in full (from a logger named after its
    file) and announce every model move, so a worker logs Ray at WARNING and lpasrn at INFO."""
    from ray.train.v2._internal.execution import context  # Ray is pinned; the logger's name is this file's path

    for name in ("ray", "ray.train", context.__file__):  # "ray.train" has a level of its own
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("lpasrn").setLevel(logging.INFO)


class RayTrainLauncher:
    """Runs the planned stages on `run.num_workers` Ray Train workers (CPU or GPU), with `run.max_failures`
    restarts of the worker group for the whole launch."""

    def trainer(self, cfg: LpasrnConfig, plan: list[PlannedStage]) -> TorchTrainer:
        table = stage_table(cfg)
        streaming = [planned for planned in plan if streams_train_split(cfg, table[planned.index])]
        datasets: dict[str, ray.data.Dataset | Callable[[], ray.data.Dataset]] = {}
        streamed_samples: dict[str, int] = {}
        if streaming:  # a packed dataset: Ray Data streams the train split to the workers
            datasets[TRAIN_DATASET], samples = packed_train_dataset(cfg)
            streamed_samples = {str(planned.index): samples for planned in streaming}
        return TorchTrainer(
            train_loop_per_worker,
            train_loop_config={
                "config": cfg.model_dump(mode="json"),
                "streamed_samples": streamed_samples,
                "plan": [dataclasses.asdict(planned) for planned in plan],
            },
            datasets=datasets or None,
            scaling_config=ScalingConfig(
                num_workers=cfg.run.num_workers,
                use_gpu=cfg.run.use_gpu,
                resources_per_worker={"CPU": cfg.run.cpus_per_worker},
            ),
            run_config=RunConfig(
                name=ray_run_name(cfg.run.name, plan),
                storage_path=cfg.run.storage_uri(),
                failure_config=FailureConfig(max_failures=cfg.run.max_failures),
            ),
        )

    def run_stages(self, cfg: LpasrnConfig, plan: list[PlannedStage]) -> None:
        try:
            self.trainer(cfg, plan).fit()
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
