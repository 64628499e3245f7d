"""Connecting a command to Ray, the same way for both halves."""
from __future__ import annotations

import logging
import os


def connect(log_to_driver: bool = True) -> str:
    """Join the cluster named by RAY_ADDRESS (`ray job submit` sets it; `auto` finds a `ray start` cluster on
    this machine), else start a private local Ray for this command.

    A private instance, rather than Ray's default of joining whatever cluster /tmp/ray last recorded, keeps a
    stale record of a stopped cluster from hanging the command. Glyphray's own `GLYPHRAY_*` variables are
    passed to the workers, which do not inherit this process's environment on an existing cluster.
    """
    import ray

    if ray.is_initialized():
        return "already connected"
    address = os.environ.get("RAY_ADDRESS") or "local"
    env_vars = {key: value for key, value in os.environ.items() if key.startswith("GLYPHRAY_")}
    ray.init(address=address, include_dashboard=False if address == "local" else None,
             logging_level=logging.WARNING, log_to_driver=log_to_driver,
             runtime_env={"env_vars": env_vars} if env_vars else None)
    return "local instance" if address == "local" else f"cluster {address}"
