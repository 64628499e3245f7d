"""Atomic writers: plain-open() modes under the umask; a refused output path is a one-line UserError naming it."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from experiments.errors import UserError
from experiments.io import atomic_directory, atomic_path, atomic_write_bytes, atomic_write_text, ensure_folder

needs_proc = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc, where no file can be made")


def test_a_file_where_a_folder_must_be_names_the_path_and_the_file(tmp_path: Path) -> None:
    blocker = tmp_path / "runs"
    blocker.write_text("not a folder")
    target = blocker / "demo" / "stage1" / "metrics.json"
    with pytest.raises(UserError) as caught:
        atomic_write_text(target, "{}")
    message = str(caught.value)
    assert str(blocker / "demo" / "stage1") in message and f"{blocker} is a file, not a folder" in message
    assert "\n" not in message
    assert blocker.read_text() == "not a folder" and sorted(tmp_path.iterdir()) == [blocker]


def test_ensure_folder_on_a_file_is_a_user_error(tmp_path: Path) -> None:
    blocker = tmp_path / "storage"
    blocker.write_text("x")
    with pytest.raises(UserError, match=f"{blocker}: cannot write there, {blocker} is a file"):
        ensure_folder(blocker)


@needs_proc
def test_a_folder_that_refuses_new_files_is_a_user_error_for_files_and_folders() -> None:
    with pytest.raises(UserError, match=r"^/proc/glyphray-x\.txt: cannot write there \("):
        with atomic_path("/proc/glyphray-x.txt") as tmp:
            tmp.write_text("never")
    with pytest.raises(UserError, match=r"^/proc/glyphray-x: cannot write there \("):
        with atomic_directory("/proc/glyphray-x"):
            pass


def test_a_target_that_is_a_folder_is_a_user_error_and_the_temporary_file_is_removed(tmp_path: Path) -> None:
    (tmp_path / "result.json").mkdir()
    with pytest.raises(UserError, match="result.json: cannot write there"):
        atomic_write_text(tmp_path / "result.json", "{}")
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_errors_inside_a_writer_block_stay_their_own(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        with atomic_path(tmp_path / "out.bin"):
            open(tmp_path / "missing-input.bin", "rb")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(params=[0o022, 0o027, 0o002, 0o077], ids=oct)
def umask(request) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomically_written_files_get_the_mode_a_plain_open_gives(umask: int, tmp_path: Path) -> None:
    with open(tmp_path / "plain.txt", "w") as fh:
        fh.write("x")
    atomic_write_text(tmp_path / "text.txt", "x")
    atomic_write_bytes(tmp_path / "bytes.bin", b"x")
    with atomic_path(tmp_path / "named.bin") as tmp:
        tmp.write_bytes(b"x")
    assert mode(tmp_path / "plain.txt") == 0o666 & ~umask
    assert {name: mode(tmp_path / name) for name in ("text.txt", "bytes.bin", "named.bin")} == dict.fromkeys(
        ("text.txt", "bytes.bin", "named.bin"), 0o666 & ~umask
    )


def test_atomically_written_folders_get_the_mode_a_plain_mkdir_gives(umask: int, tmp_path: Path) -> None:
    with atomic_directory(tmp_path / "out") as staging:
        (staging / "file.txt").write_text("x")
    assert mode(tmp_path / "out") == 0o777 & ~umask
    assert mode(tmp_path / "out" / "file.txt") == 0o666 & ~umask
