"""Experiment files shared by lpasrn and digits: YAML -> typed config, overrides, errors, atomic writes."""

from experiments.config import load_config, save_resolved_config
from experiments.errors import UserError

__all__ = ["UserError", "load_config", "save_resolved_config"]
