"""Atomic writers: a refused output path is a one-line UserError naming it, and nothing is left behind."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from experiments.errors import UserError
from experiments.io import atomic_directory, atomic_path, atomic_write_text, ensure_folder

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
