"""Connecting to Ray: an existing cluster (RAY_ADDRESS, `ray job submit`) or a local instance started here."""

from __future__ import annotations

import logging

import ray

from experiments import storage
from experiments.errors import UserError
from experiments.ray_connect import connect as connect_to_ray
from lpasrn.config import LpasrnConfig

logger = logging.getLogger(__name__)


def connect() -> None:
    """Join RAY_ADDRESS or start a local Ray (see `experiments.ray_connect`), and say what we got.

    Ray 2.60 turns token authentication on by default: a local start writes ~/.ray/auth_token and clients on
    the same machine read it; remote clients need `RAY_AUTH_TOKEN` (see the README).
    """
    where = connect_to_ray()
    resources = ray.cluster_resources()
    logger.info(
        "Ray %s: %d node(s), %g CPU, %g GPU",
        where,
        len(alive_nodes()),
        resources.get("CPU", 0),
        resources.get("GPU", 0),
    )


def alive_nodes() -> list[dict]:
    return [node for node in ray.nodes() if node.get("Alive")]


def check_resources(cfg: LpasrnConfig) -> None:
    """Refuse runs the cluster cannot place: GPUs it does not have, or several nodes without shared storage."""
    nodes = alive_nodes()
    resources = ray.cluster_resources()
    if cfg.run.use_gpu and resources.get("GPU", 0) == 0 and len(nodes) == 1:
        raise UserError("run.use_gpu: this Ray instance has no GPU; drop --gpu (and run.use_gpu) to train on the CPU")
    if len(nodes) > 1 and not (cfg.run.shared_storage or storage.is_uri(cfg.run.storage_path)):
        raise UserError(
            f"run.storage_path={cfg.run.storage_path}: this cluster has {len(nodes)} nodes, so every "
            "worker must reach the same storage: use an object store (s3://bucket/runs, gs://...) or an "
            "NFS mount shared by all nodes with run.shared_storage=true"
        )
