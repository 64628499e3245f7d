"""Atomic file writes: a killed run never leaves a half-written file that a later run would load."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from experiments.errors import UserError


def _file_in_the_way(path: Path) -> Path | None:
    """The first of `path`'s ancestors (or `path` itself) that exists but is a file, so no folder can go there."""
    for candidate in [*reversed(path.parents), path]:
        if candidate.exists() and not candidate.is_dir():
            return candidate
    return None


def unwritable_path_error(path: str | os.PathLike, err: OSError, folder: bool = False) -> UserError:
    """A user-given output path the OS refused (a file where a folder must be, no permission, no space), as one
    line that names the path; the writers below raise it so no command ends in an OSError traceback."""
    blocker = _file_in_the_way(Path(path) if folder else Path(path).parent)
    if blocker is not None:
        return UserError(f"{path}: cannot write there, {blocker} is a file, not a folder (choose another path)")
    reason = err.strerror or str(err) or err.__class__.__name__
    return UserError(f"{path}: cannot write there ({reason}); choose a writable folder")


@contextlib.contextmanager
def _writing(path: str | os.PathLike, folder: bool = False) -> Iterator[None]:
    try:
        yield
    except OSError as err:
        raise unwritable_path_error(path, err, folder) from None


def ensure_folder(folder: str | os.PathLike) -> Path:
    """`folder` and its parents, created if missing; a refusal is a one-line UserError naming it."""
    folder = Path(folder)
    with _writing(folder, folder=True):
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (os.umask alone must set a new one)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def plain_file_mode() -> int:
    """The mode `open(path, "w")` gives a new file; mkstemp's are 0o600 whatever the umask."""
    return 0o666 & ~current_umask()


def plain_folder_mode() -> int:
    """The mode `mkdir` gives a new folder; mkdtemp's are 0o700 whatever the umask."""
    return 0o777 & ~current_umask()


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it is renamed onto `target`, on error removed.

    Use it for writers that want a file name (PIL, torch.save, TFLite converters, matplotlib). The file ends up
    with the mode a plain `open()` gives under the umask; an unusable `target` (a file in the way, no
    permission, no space) is a UserError naming it.
    """
    target = Path(target)
    ensure_folder(target.parent)
    with _writing(target):
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp" + target.suffix, dir=target.parent)
        os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with _writing(target):
            os.chmod(tmp, plain_file_mode())
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(target) as tmp, _writing(target):
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(target)


def atomic_write_text(target: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(target, text.encode("utf-8"))


def _check_directory_target(target: Path, overwrite: bool) -> None:
    """Refuse a target that would lose data: a file, a non-empty folder without overwrite, or a home/cwd."""
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
    ensure_folder(target.parent)
    with _writing(target):
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        os.chmod(staging, plain_folder_mode())
        yield staging
        with _writing(target):
            _swap_into_place(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
