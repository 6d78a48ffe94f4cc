"""vocab.outpath: the one output guard and the atomic write."""

from __future__ import annotations

from pathlib import Path

import pytest

from vocab.errors import SpecError
from vocab.outpath import atomic_write, check_output, write_text_atomic


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    path.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as tmp:
            tmp.write_text("half a tab")
            raise RuntimeError("interrupted mid-write")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_the_temporary_keeps_the_suffix_and_the_file_lands_whole(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "plot.png"          # the folder is made
    with atomic_write(path) as tmp:
        assert tmp.suffix == ".png" and tmp.parent == path.parent and tmp.name.startswith(".")
        tmp.write_bytes(b"png")
    assert path.read_bytes() == b"png"
    assert write_text_atomic(path, "again").read_text() == "again"


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_existing_is_refused_unless_overwrite(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "out"
    if kind == "file":
        path.write_text("x")
    else:
        path.mkdir()
        (path / "a").write_text("x")
    with pytest.raises(SpecError, match="--force.*overwrite=True"):
        check_output(path, kind=kind)
    assert check_output(path, kind=kind, overwrite=True) == path


def test_an_empty_folder_is_fine_and_a_file_is_not_a_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    check_output(tmp_path / "empty", kind="dir")
    (tmp_path / "f").write_text("x")
    with pytest.raises(SpecError, match="it is a file"):
        check_output(tmp_path / "f", kind="dir", overwrite=True)
    with pytest.raises(SpecError, match="under the file"):
        check_output(tmp_path / "f" / "deeper" / "out.csv")
    with pytest.raises(SpecError, match="it is a directory"):
        check_output(tmp_path / "empty", kind="file", overwrite=True)
