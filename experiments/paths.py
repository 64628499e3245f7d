"""Every path a user gives (data roots, data sources, storage paths, checkpoints), resolved one way in both halves.

Local paths become absolute against the command's working folder, because Ray workers and Tune trials start in
folders of their own. URIs (`s3://`, `gs://`, `hf://`) pass unchanged. Under `ray job submit --working-dir`, the
command runs inside a temporary copy of that folder which the cluster deletes with the job's session: an input
found there was uploaded on purpose (files that `.gitignore` excludes, such as `runs/`, are not), but an output
written there is lost, so a relative output path in a job is refused with a line that says what to pass.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from experiments.errors import UserError

RAY_JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"  # set by Ray's job supervisor for the job's entrypoint


def is_uri(location: str | os.PathLike) -> bool:
    return "://" in str(location)


def path_or_uri(value: object) -> object:
    """A config value that names a place: a URI stays a string (pathlib would fold its "//"), else a Path.
    For pydantic `mode="before"` validators of `Path | str` fields."""
    if isinstance(value, (str, os.PathLike)):
        return str(value) if is_uri(value) else Path(value)
    return value


def in_ray_job_working_dir() -> bool:
    """True when this command is a `ray job submit` entrypoint running in an uploaded copy of --working-dir."""
    raw = os.environ.get(RAY_JOB_CONFIG_ENV)
    if not raw:
        return False
    try:
        runtime_env = json.loads(raw).get("runtime_env") or {}
    except (ValueError, AttributeError):
        return False
    return bool(runtime_env.get("working_dir"))


def input_path(location: str | os.PathLike) -> Path:
    """A local input (dataset folder, data source, checkpoint) as an absolute path."""
    return Path(location).expanduser().resolve()


def input_location(location: str | os.PathLike) -> str:
    """An input that may also be a URI: URIs unchanged, local paths absolute."""
    return str(location) if is_uri(location) else str(input_path(location))


def output_location(location: str | os.PathLike, key: str) -> str:
    """Where outputs go (`key` names the setting in errors): URIs unchanged, local paths absolute.

    A relative path inside a Ray job's working-dir copy would put checkpoints where the cluster deletes them.
    """
    if is_uri(location):
        return str(location)
    path = Path(location).expanduser()
    if not path.is_absolute() and in_ray_job_working_dir():
        raise UserError(
            f"{key}={location}: a relative path in a Ray job lands in the job's temporary copy of "
            f"--working-dir, which the cluster deletes; pass an absolute path that every node sees "
            f'(on a one-machine cluster: "$PWD/{location}" from the submitting shell) or an s3:// or '
            "gs:// URI"
        )
    return str(path.resolve())


def missing_input_hint() -> str:
    """What to add to a 'not found' message for an input: in a Ray job, why it may not have been uploaded."""
    if not in_ray_job_working_dir():
        return ""
    return (
        " (this Ray job runs in an uploaded copy of --working-dir, without what .gitignore excludes such as "
        "runs/: pass an absolute path that every node sees, or keep the data inside the working dir)"
    )
