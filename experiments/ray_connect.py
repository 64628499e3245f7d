"""Connecting a command to Ray, the same way for both halves."""

from __future__ import annotations

import logging
import os

from experiments.errors import UserError


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
    runtime_env: dict = {}
    env_vars = {key: value for key, value in os.environ.items() if key.startswith("GLYPHRAY_")}
    if env_vars:
        runtime_env["env_vars"] = env_vars
    if address == "local":
        runtime_env["worker_process_setup_hook"] = f"{__name__}.quiet_without_dashboard"
        for key, value in LOCAL_RAY_TRAIN_SETTINGS.items():
            os.environ.setdefault(key, value)  # before ray.init: the local Ray's processes inherit them
    try:
        ray.init(
            address=address,
            include_dashboard=False if address == "local" else None,
            logging_level=logging.WARNING,
            log_to_driver=log_to_driver,
            runtime_env=runtime_env or None,
        )
    except Exception as err:  # noqa: BLE001 - Ray raises many types here; all mean "no cluster to run on"
        raise UserError(_start_failure(address, err)) from None
    return "local instance" if address == "local" else f"cluster {address}"


# What a private local Ray (one machine, torn down with the command, no dashboard) has no use for: Ray Train's
# preemption watcher (no preemptible nodes) and its metrics (nothing to show them). Each is an idle process or
# callback that wakes the cores the training runs on. A value the user set is kept.
LOCAL_RAY_TRAIN_SETTINGS = {"RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0", "RAY_TRAIN_METRICS_ENABLED": "0"}


# Ray Train's placement-group cleaner asks the State API every second whether the controller lives, and warns each
# time it cannot: on a private local Ray, started without the dashboard that serves that API (and torn down with the
# command, placement groups included), that is every second of a run.
UNAVAILABLE_WITHOUT_DASHBOARD = ("ray.train.v2._internal.execution.controller.placement_group_cleaner",)


def quiet_without_dashboard() -> None:
    """Worker process setup hook of a private local Ray: mute the warnings of what needs the dashboard there."""
    for name in UNAVAILABLE_WITHOUT_DASHBOARD:
        logging.getLogger(name).setLevel(logging.ERROR)


def _start_failure(address: str, err: Exception) -> str:
    """One line: what failed, Ray's own reason, and what to try."""
    reason = " ".join(str(err).split())[:300] or err.__class__.__name__
    if "authentication" in reason.lower() or "token" in reason.lower():
        advice = (
            "the cluster wants its token: export RAY_AUTH_MODE=token and make it readable (~/.ray/auth_token, "
            "RAY_AUTH_TOKEN_PATH or RAY_AUTH_TOKEN)"
        )
    elif address == "local":
        advice = (
            "a local Ray could not start; on a loaded machine try again, free memory or disk (/tmp/ray), or "
            "train without Ray with --local where the command has it"
        )
    else:
        advice = f"check that the cluster at RAY_ADDRESS={address} is up (`ray status --address {address}`)"
    where = "starting a local Ray" if address == "local" else f"connecting to Ray at {address}"
    return f"{where} failed ({err.__class__.__name__}: {reason}): {advice}"
