"""Find, read and fit pretrained weights: local files or `hf://owner/repo/file` on the Hugging Face hub.

Nothing on disk is unpickled as code: `.pt`/`.pth`/`.ckpt`/`.bin` go through `torch.load(weights_only=True)`,
`.safetensors` through safetensors. Whatever a user points at and cannot be used is a `CheckpointError` that says
which file and why, in one line: the models know nothing of the command line, whose boundary shows it as a user
error (exit 2, no traceback).
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

HUB_SCHEME = "hf://"
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".safetensors")
# Where trainers nest the weights: Lightning, then KAIR/BasicSR (SwinIR's releases), then plain wrappers.
STATE_DICT_CONTAINERS = ("state_dict", "params_ema", "params", "model")
# Prefixes that wrappers put in front of every key: DistributedDataParallel, then a Lightning system's `model`.
WRAPPER_PREFIXES = ("module.", "model.")
_PREVIEW_KEYS = 6


@dataclass
class Checkpoint:
    """Tensors of a checkpoint file, unwrapped and unprefixed, with its hyper-parameters when it has any."""

    state_dict: dict[str, Tensor]
    source: str
    hyper_parameters: dict[str, Any] = field(default_factory=dict)


class CheckpointError(Exception):
    """A checkpoint the user pointed at that cannot be used: missing, unreadable, not tensors, or not fitting."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class CheckpointMismatchError(CheckpointError):
    """The checkpoint's tensors do not fit the model: names the missing, unexpected and mis-shaped keys."""


def resolve_pretrained(path_or_ref: str) -> Path:
    """A local checkpoint path, or `hf://owner/repo/path/in/repo` downloaded to (or found in) the hub cache."""
    if path_or_ref.startswith(HUB_SCHEME):
        return _hub_file(path_or_ref)
    path = Path(path_or_ref).expanduser()
    if not path.is_file():
        raise CheckpointError(
            f"pretrained weights {path_or_ref!r} not found: give an existing "
            f"{'/'.join(CHECKPOINT_SUFFIXES)} file or an {HUB_SCHEME}owner/repo/file reference"
        )
    if path.suffix not in CHECKPOINT_SUFFIXES:
        raise CheckpointError(
            f"pretrained weights {path_or_ref!r}: unsupported file type {path.suffix!r} "
            f"(expected one of {', '.join(CHECKPOINT_SUFFIXES)})"
        )
    return path


def _hub_file(ref: str) -> Path:
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    parts = ref[len(HUB_SCHEME) :].split("/", 2)
    if len(parts) != 3 or not all(parts):
        raise CheckpointError(f"hub reference {ref!r} must look like {HUB_SCHEME}owner/repo/path/to/file")
    repo_id, filename = f"{parts[0]}/{parts[1]}", parts[2]
    try:  # the cache first: works offline and costs no request
        return Path(hf_hub_download(repo_id, filename, local_files_only=True))
    except LocalEntryNotFoundError:
        pass
    offline = constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}
    if offline:
        raise CheckpointError(
            f"{ref} is not in the Hugging Face cache ({constants.HF_HUB_CACHE}) and HF_HUB_OFFLINE "
            f"is set: download it once with network access, or point to a local file instead"
        )
    try:
        return Path(hf_hub_download(repo_id, filename))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"cannot fetch {ref} from the Hugging Face hub ({reason}); check the repository and "
            f"file name, your network, or point to a local file instead"
        ) from None


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Load tensors only (weights_only / safetensors), unwrap trainer containers and strip wrapper prefixes."""
    path = Path(path)
    hyper_parameters: dict[str, Any] = {}
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            payload: Any = load_file(str(path), device="cpu")
        else:
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        what = f"it contains {found.group(1)}" if found else "it contains objects other than tensors"
        raise CheckpointError(
            f"{path}: refusing to unpickle Python objects from a checkpoint ({what}); save only "
            f"tensors, e.g. torch.save(model.state_dict(), ...) or a .safetensors file"
        ) from None
    except (OSError, RuntimeError, EOFError, ValueError) as err:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(payload, Mapping):
        raise CheckpointError(f"{path}: expected a dict of tensors, found {type(payload).__name__}")
    if isinstance(payload.get("hyper_parameters"), Mapping):
        hyper_parameters = dict(payload["hyper_parameters"])
    state = _unwrap(payload)
    if not state:
        raise CheckpointError(f"{path}: holds no tensors (expected a state dict, possibly under 'state_dict')")
    return Checkpoint(state_dict=_strip_wrapper_prefixes(state), source=str(path), hyper_parameters=hyper_parameters)


def _unwrap(payload: Mapping) -> dict[str, Tensor]:
    for key in STATE_DICT_CONTAINERS:
        if isinstance(payload.get(key), Mapping):
            return _unwrap(payload[key])
    return {key: value for key, value in payload.items() if isinstance(value, Tensor)}


def _strip_wrapper_prefixes(state: dict[str, Tensor]) -> dict[str, Tensor]:
    for prefix in WRAPPER_PREFIXES:
        if all(key.startswith(prefix) for key in state):
            state = {key[len(prefix) :]: value for key, value in state.items()}
    return state


def load_checked_state_dict(
    model: nn.Module, state: Mapping[str, Tensor], source: str, ignored_suffixes: Iterable[str] = ()
) -> None:
    """Strict `load_state_dict` whose failure names every missing, unexpected and mis-shaped key, in one line."""
    ignored = tuple(ignored_suffixes)
    state = {key: value for key, value in state.items() if not (ignored and key.endswith(ignored))}
    expected = model.state_dict()
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    mismatched = [
        f"{key} (checkpoint {tuple(state[key].shape)} vs model {tuple(expected[key].shape)})"
        for key in sorted(expected.keys() & state.keys())
        if state[key].shape != expected[key].shape
    ]
    problems = [
        f"{label}: {_preview(keys)}"
        for label, keys in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", mismatched),
        )
        if keys
    ]
    if problems:
        raise CheckpointMismatchError(
            f"{source} does not fit {type(model).__name__}: "
            + "; ".join(problems)
            + " (is it a checkpoint of a different configuration?)"
        )
    model.load_state_dict(state, strict=True)


def _preview(items: list[str]) -> str:
    shown = ", ".join(items[:_PREVIEW_KEYS])
    return shown if len(items) <= _PREVIEW_KEYS else f"{shown}, ... (+{len(items) - _PREVIEW_KEYS} more)"
