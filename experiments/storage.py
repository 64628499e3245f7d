"""Run outputs on a local disk (or an NFS mount) or in an object store (s3://, gs://, ...), through pyarrow.fs.

A *location* is a local path or a URI. Readers (`exists`, `read_bytes`) take either. Writers go through a local
folder first: `MirroredFolder` is where a stage writes its files, and `sync()` copies new and changed ones to the
store. An object appears in S3 or GCS only once its upload completes, so a reader never sees half a checkpoint,
just as `experiments.io.atomic_path` guarantees on a disk. Credentials and endpoints come from the usual
environment (AWS_*, GOOGLE_APPLICATION_CREDENTIALS, AWS_ENDPOINT_URL for S3-compatible stores such as MinIO).
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from experiments.io import atomic_write_bytes


def is_uri(location: str | os.PathLike) -> bool:
    return "://" in str(location)


def join(location: str | os.PathLike, *parts: str) -> str:
    """`location/part/...`, keeping a URI's `scheme://` intact (pathlib would fold it to `scheme:/`)."""
    if is_uri(location):
        return "/".join([str(location).rstrip("/"), *(part.strip("/") for part in parts)])
    return str(Path(location, *parts))


@functools.lru_cache(maxsize=256)
def _resolve(uri: str):
    from pyarrow import fs

    try:
        return fs.FileSystem.from_uri(uri)
    except (ValueError, OSError) as err:
        from experiments.errors import UserError

        raise UserError(f"{uri}: cannot open this storage location ({str(err).splitlines()[0]})") from None


def resolve(uri: str):
    """(pyarrow FileSystem, path inside it) for a URI; an unusable one is a one-line UserError naming it."""
    return _resolve(str(uri))


def exists(location: str | os.PathLike) -> bool:
    if not is_uri(location):
        return Path(location).exists()
    from pyarrow import fs

    filesystem, path = _resolve(str(location))
    return filesystem.get_file_info(path).type != fs.FileType.NotFound


def read_bytes(location: str | os.PathLike) -> bytes:
    """The whole file; FileNotFoundError when it is not there (on a disk or in a bucket alike)."""
    if not is_uri(location):
        return Path(location).read_bytes()
    filesystem, path = _resolve(str(location))
    with filesystem.open_input_stream(path) as stream:  # pyarrow raises FileNotFoundError itself
        return stream.read()


def write_bytes(location: str | os.PathLike, data: bytes) -> str:
    """Write one file atomically: rename on a disk, a single completed upload in an object store."""
    if not is_uri(location):
        return str(atomic_write_bytes(location, data))
    filesystem, path = _resolve(str(location))
    with filesystem.open_output_stream(path) as stream:
        stream.write(data)
    return str(location)


def upload_file(local: Path, location: str) -> None:
    from pyarrow import fs

    filesystem, path = _resolve(location)
    try:
        fs.copy_files(str(local), path, source_filesystem=fs.LocalFileSystem(), destination_filesystem=filesystem)
    except OSError as err:
        from experiments.errors import UserError

        raise UserError(f"{location}: cannot upload ({str(err).splitlines()[0]})") from None


def list_files(location: str | os.PathLike) -> list[str]:
    """Every file under `location` (a folder or a bucket prefix), as sorted relative POSIX names; [] if none."""
    if not is_uri(location):
        folder = Path(location)
        return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    from pyarrow import fs

    filesystem, path = _resolve(str(location))
    infos = filesystem.get_file_info(fs.FileSelector(path, recursive=True, allow_not_found=True))
    root = path.rstrip("/") + "/"
    return sorted(info.path.removeprefix(root) for info in infos if info.type == fs.FileType.File)


def remove_tree(location: str | os.PathLike) -> None:
    """Delete `location` and all under it (a folder, or every object under a bucket prefix); nothing there is fine."""
    if not is_uri(location):
        shutil.rmtree(location, ignore_errors=True)
        return
    filesystem, path = _resolve(str(location))
    filesystem.delete_dir_contents(path, missing_dir_ok=True)


def scratch_folder(location: str) -> Path:
    """The same local folder for `location` every time it is asked for (in this machine's temp folder), for a
    writer that must find its files again at the same path, e.g. after a restart."""
    tag = hashlib.sha1(str(location).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"glyphray-{Path(str(location)).name}-{tag}"


class MirroredFolder:
    """A local folder that stands for `location`: a local location is used as it is; for a URI, a private
    scratch folder is written instead and `sync()` uploads what changed since the previous sync."""

    def __init__(self, location: str | os.PathLike, local: Path | None = None):
        """`local`: the scratch folder of a remote location (default: a new private one), e.g. a `scratch_folder`
        so that a restarted writer finds the same paths."""
        self.location = str(location)
        self.remote = is_uri(location)
        if self.remote:
            tag = hashlib.sha1(self.location.encode()).hexdigest()[:10]
            self.local = (
                Path(local)
                if local is not None
                else Path(tempfile.mkdtemp(prefix=f"glyphray-{Path(self.location).name}-{tag}-"))
            )
            self.local.mkdir(parents=True, exist_ok=True)
        else:
            self.local = Path(location)
        self._sent: dict[Path, tuple[int, int]] = {}

    def pull(self, wanted: Callable[[str], bool]) -> list[str]:
        """Download the files of the store whose relative names `wanted` accepts into the scratch folder (replacing
        local copies); they count as sent. Nothing to do for a local location."""
        if not self.remote:
            return []
        names = [name for name in list_files(self.location) if wanted(name)]
        for name in names:
            target = self.local / name
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(target, read_bytes(join(self.location, name)))
            stat = target.stat()
            self._sent[target] = (stat.st_mtime_ns, stat.st_size)
        return names

    def sync(self, last: Iterable[str] = ()) -> list[str]:
        """Upload new and changed files; the names in `last` (relative) go after all others, so a marker such
        as metrics.json's `finished` never reaches the store before the files it vouches for."""
        if not self.remote:
            return []
        late = {self.local / name for name in last}
        changed = []
        for path in sorted(p for p in self.local.rglob("*") if p.is_file() and not p.name.startswith(".")):
            stat = path.stat()
            if self._sent.get(path) != (stat.st_mtime_ns, stat.st_size):
                changed.append((path, (stat.st_mtime_ns, stat.st_size)))
        changed.sort(key=lambda item: item[0] in late)
        for path, signature in changed:
            upload_file(path, join(self.location, path.relative_to(self.local).as_posix()))
            self._sent[path] = signature
        return [path.relative_to(self.local).as_posix() for path, _ in changed]

    def close(self) -> None:
        """Remove the scratch folder (only a remote location has one)."""
        if self.remote:
            shutil.rmtree(self.local, ignore_errors=True)
