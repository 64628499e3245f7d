"""Experiment files shared by lpasrn and digits: YAML -> typed config, overrides, errors, atomic writes."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from experiments.config import load_config, save_resolved_config
from experiments.errors import UserError

if TYPE_CHECKING:
    import pandas as pd


def load(run_dir: str | os.PathLike) -> pd.DataFrame:
    """A finished run (Ray Tune experiment or lpasrn run folder) as a pandas DataFrame, one row per trial.

    Imported on use: pandas stays out of every command that only reads experiment files.
    """
    from experiments.analysis import load as load_run

    return load_run(run_dir)


__all__ = ["UserError", "load", "load_config", "save_resolved_config"]
