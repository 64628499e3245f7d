"""Atomic file writes: a killed run never leaves a half-written file that a later run would load."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it is renamed onto `target`, on error removed.

    Use it for writers that want a file name (PIL, torch.save, TFLite converters, matplotlib).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp" + target.suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(target)


def atomic_write_text(target: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(target, text.encode("utf-8"))


def _check_directory_target(target: Path, overwrite: bool) -> None:
    """Refuse a target that would lose data: a file, a non-empty folder without overwrite, or a home/cwd."""
    from experiments.errors import UserError

    if target.exists() and not target.is_dir():
        raise UserError(f"{target}: exists and is not a folder")
    if not target.is_dir() or not any(target.iterdir()):
        return
    if not overwrite:
        raise UserError(f"{target}: exists and is not empty (use --overwrite to replace it)")
    resolved, cwd = target.resolve(), Path.cwd().resolve()
    if resolved in (Path.home().resolve(), Path(resolved.anchor)) or resolved == cwd or resolved in cwd.parents:
        raise UserError(f"{target}: refusing to replace the home, root or current folder; pick another folder")


def _swap_into_place(staging: Path, target: Path) -> None:
    """Rename the finished `staging` onto `target`; an old `target` is moved aside first, deleted only after."""
    if not target.exists():
        os.rename(staging, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    os.rename(target, old / target.name)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(old / target.name, target)
        raise
    finally:
        if target.exists():
            shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty folder beside `target`; when the block succeeds it replaces `target` in one rename.

    A non-empty `target` is refused unless `overwrite`; the old content is removed only once the new one is
    complete, so an interrupted run leaves `target` as it was.
    """
    target = Path(target)
    _check_directory_target(target, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        os.chmod(staging, 0o755)
        yield staging
        _swap_into_place(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
