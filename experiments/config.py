"""Experiment files: YAML -> typed config, `--set key.path=value` overrides, one-line errors.

Both halves (lpasrn, digits) describe their configuration as pydantic models derived from `StrictModel`
and load them through `load_config`. Every failure becomes a `UserError` that names the file (or the
`--set` override) and the key path, so the CLI can print one line and exit 2.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from experiments.errors import UserError
from experiments.io import atomic_write_text

RESOLVED_CONFIG_NAME = "config.resolved.yaml"
PRESETS_DIR = Path(__file__).resolve().parent

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for config sections: unknown keys are errors and a loaded config never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


# ----------------------------------------------------------------------------------------------------------
# Finding and reading files
# ----------------------------------------------------------------------------------------------------------
def resolve_config_path(name: str | os.PathLike, kind: str | None = None) -> Path:
    """A path as given, or a shipped preset (`lp_asrn_tiny`, `experiments/lpasrn/lp_asrn_tiny.yaml`).

    The fallback to the installed presets lets `lpasrn train --config experiments/lpasrn/x.yaml` work from
    any directory (for example inside a `ray job submit` working dir that lacks the file).
    """
    path = Path(name)
    if path.is_file():
        return path
    stem = path.name if path.suffix in (".yaml", ".yml") else f"{path.name}.yaml"
    kinds = [kind] if kind else ["lpasrn", "digits"]
    for sub in kinds:
        candidate = PRESETS_DIR / sub / stem
        if candidate.is_file():
            return candidate
    if path.exists():
        raise UserError(f"{path}: is not a file (expected a YAML experiment file)")
    raise UserError(f"{path}: config file not found (shipped presets: {', '.join(list_presets(kind)) or 'none'})")


def list_presets(kind: str | None = None) -> list[str]:
    kinds = [kind] if kind else ["lpasrn", "digits"]
    return sorted(p.stem for sub in kinds for p in (PRESETS_DIR / sub).glob("*.yaml"))


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise UserError(f"{path}: cannot read ({err.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise UserError(f"{path}: invalid YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: top level must be a mapping of keys, got {type(data).__name__}")
    return data


# ----------------------------------------------------------------------------------------------------------
# Overrides
# ----------------------------------------------------------------------------------------------------------
def parse_override(text: str) -> tuple[list[str], Any]:
    """`stages.2.epochs=5` -> (['stages', '2', 'epochs'], 5). Values are parsed as YAML scalars/lists."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise UserError(f"--set {text!r}: expected key.path=value, for example stages.2.epochs=5")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_override(data: dict[str, Any], parts: Sequence[str], value: Any, label: str) -> None:
    """Set `value` at `parts` inside nested dicts/lists, creating mappings on the way."""
    node: Any = data
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            if not part.isdigit():
                raise UserError(f"--set {label}: {where}: {'.'.join(parts[:depth])} is a list, use an index")
            index = int(part)
            if index >= len(node):
                raise UserError(f"--set {label}: {where}: index {index} out of range (list has {len(node)} items)")
            if last:
                node[index] = value
            else:
                node = node[index]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                child = node.get(part)
                if child is None:
                    child = node[part] = {}
                elif not isinstance(child, (dict, list)):
                    raise UserError(f"--set {label}: {where} is a value, not a section")
                node = child
        else:  # pragma: no cover - guarded above
            raise UserError(f"--set {label}: {where} is a value, not a section")


def _section_default(model_cls: type[BaseModel], name: str) -> Any:
    """The default of a top-level section, so `--set stages.2.epochs=5` works when the file omits `stages`."""
    field = model_cls.model_fields[name]
    if field.is_required():
        return None
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (list, tuple)):
        return [item.model_dump(mode="json") if isinstance(item, BaseModel) else item for item in value]
    return None


# ----------------------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------------------
def _format_loc(loc: Iterable[Any]) -> str:
    return ".".join(str(part) for part in loc if not str(part).startswith("function-"))


def _origin(loc: str, msg: str, source: str, overrides: dict[str, str]) -> str:
    """The `--set` that caused an error (by key path, or named in a cross-key message), else the file."""
    for key, text in overrides.items():
        if loc and (loc == key or loc.startswith(key + ".") or key.startswith(loc + ".")):
            if loc != key and not loc.startswith(key + ".") and key.rsplit(".", 1)[-1] not in msg:
                continue
            return f"--set {text}"
        if not loc and re.search(rf"\b{re.escape(key.rsplit('.', 1)[-1])}\b", msg):
            return f"--set {text}"
    return source


def _format_validation_error(err: ValidationError, source: str, overrides: dict[str, str]) -> str:
    messages = []
    for item in err.errors():
        loc = _format_loc(item["loc"])
        msg = item["msg"]
        if item["type"] == "extra_forbidden":
            msg = "unknown key"
        elif item["type"] == "missing":
            msg = "required key is missing"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        got = item.get("input")
        shown = (
            f" (got {got!r})"
            if item["type"] not in ("missing", "extra_forbidden", "value_error") and not isinstance(got, (dict, list))
            else ""
        )
        where = f"{loc}: " if loc else ""
        messages.append(f"{_origin(loc, msg, source, overrides)}: {where}{msg}{shown}")
    return "; ".join(messages)


def validate_config(
    model_cls: type[M], data: dict[str, Any], source: str = "config", overrides: dict[str, str] | None = None
) -> M:
    try:
        return model_cls.model_validate(data)
    except ValidationError as err:
        raise UserError(_format_validation_error(err, source, overrides or {})) from None


def load_config(
    model_cls: type[M], path: str | os.PathLike | None = None, overrides: Sequence[str] = (), kind: str | None = None
) -> M:
    """Load `path` (or the defaults when None), apply `--set` overrides, validate into `model_cls`."""
    if path is None:
        data: dict[str, Any] = {}
        source = "defaults"
    else:
        resolved = resolve_config_path(path, kind)
        data = read_yaml_mapping(resolved)
        source = str(resolved)
    data = copy.deepcopy(data)
    applied: dict[str, str] = {}
    for text in overrides:
        parts, value = parse_override(text)
        top = parts[0]
        if len(parts) > 1 and top not in data and top in model_cls.model_fields:
            default = _section_default(model_cls, top)
            if default is not None:
                data[top] = default
        apply_override(data, parts, value, text)
        applied[".".join(parts)] = text
    return validate_config(model_cls, data, source, applied)


def config_to_yaml(config: BaseModel) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, default_flow_style=False)


def save_resolved_config(config: BaseModel, out_dir: str | os.PathLike) -> Path:
    """Write `config.resolved.yaml` beside a run's outputs (atomically)."""
    return atomic_write_text(Path(out_dir) / RESOLVED_CONFIG_NAME, config_to_yaml(config))
