"""Ray glue for `digits train` with several models: one Ray task per architecture, on the same Ray.

Each task asks for `cpus_per_model` CPUs and caps TensorFlow's thread pools to match (Ray sets
OMP_NUM_THREADS but TensorFlow ignores it), so N small models share a workstation or a cluster without
oversubscribing it. The task runs the plain `train_and_export`; nothing else in digits knows about Ray.
Paths are made absolute before they are shipped, because a worker does not start in the driver's folder.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import ray

from digits.config import DigitsConfig
from experiments.errors import UserError
from experiments.ray_connect import connect as connect_to_ray

if TYPE_CHECKING:
    from digits.workflow.run import RunResult

log = logging.getLogger(__name__)


def connect() -> None:
    """Join the cluster named by RAY_ADDRESS, else start a local Ray for this command."""
    connect_to_ray(log_to_driver=False)


@ray.remote(max_calls=1)  # a fresh worker per model: TensorFlow's thread pools are fixed at its first import
def _train_task(cfg_data: dict, threads: int, no_cleanup: bool) -> RunResult:
    from digits.training.runtime import limit_threads

    limit_threads(threads)
    from digits.workflow.run import train_and_export

    return train_and_export(DigitsConfig.model_validate(cfg_data), no_cleanup=no_cleanup, verbose=0)


def _user_error(err: ray.exceptions.RayTaskError) -> UserError | None:
    cause = getattr(err, "cause", None)
    return cause if isinstance(cause, UserError) else None


def train_concurrently(
    configs: Sequence[DigitsConfig],
    cpus_per_model: int = 1,
    no_cleanup: bool = False,
    on_done: Callable[[RunResult], None] | None = None,
) -> list[RunResult]:
    """Train every config as its own Ray task; results in the order of `configs` (`on_done` as each finishes)."""
    if cpus_per_model < 1:
        raise UserError(f"--cpus-per-model {cpus_per_model}: must be at least 1")
    connect()
    cluster_cpus = ray.cluster_resources().get("CPU", 0)
    if cpus_per_model > cluster_cpus:
        raise UserError(f"--cpus-per-model {cpus_per_model}: this Ray has only {cluster_cpus:g} CPU(s); lower it")
    task = _train_task.options(num_cpus=cpus_per_model)
    pending = {
        task.remote(cfg.with_absolute_paths().model_dump(mode="json"), cpus_per_model, no_cleanup): index
        for index, cfg in enumerate(configs)
    }
    log.info(
        "training %d models as Ray tasks, %d CPU(s) each (%g CPUs in this Ray)",
        len(configs),
        cpus_per_model,
        cluster_cpus,
    )
    results: list[RunResult | None] = [None] * len(configs)
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        index = pending.pop(done[0])
        try:
            result: RunResult = ray.get(done[0])
        except ray.exceptions.RayTaskError as err:
            user_error = _user_error(err)
            if user_error is None:
                raise
            for ref in pending:
                ray.cancel(ref)
            raise UserError(f"{configs[index].model_architecture}: {user_error}") from None
        results[index] = result
        if on_done is not None:
            on_done(result)
    return [result for result in results if result is not None]
