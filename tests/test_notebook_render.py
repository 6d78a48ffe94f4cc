"""``python -m notebooks.render`` finishes every notebook even when one fails or hangs, and
exits non-zero naming the ones that failed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")

from notebooks import render  # noqa: E402


def write_notebook(path: Path, source: str) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
def test_a_failing_and_a_hanging_notebook_are_recorded_and_the_rest_run(tmp_path, monkeypatch,
                                                                        capsys):
    write_notebook(tmp_path / "01_fails.ipynb", "raise ValueError('broken on purpose')")
    # Each cell is short; together they outlast the notebook's time.
    write_notebook(tmp_path / "02_hangs.ipynb", "import time\nfor _ in range(20): time.sleep(1)")
    write_notebook(tmp_path / "03_works.ipynb", "open('ran.txt', 'w').write('yes')")
    monkeypatch.setattr(render, "HERE", tmp_path)
    out = tmp_path / "figures"
    assert render.main(["--out", str(out), "--timeout-s", "8"]) == 1
    captured = capsys.readouterr()
    assert "01_fails.ipynb: FAILED" in captured.out and "broken on purpose" in captured.out
    assert "02_hangs.ipynb: FAILED" in captured.out
    assert "03_works.ipynb:" in captured.out and (tmp_path / "ran.txt").read_text() == "yes"
    assert "failed: 01_fails.ipynb, 02_hangs.ipynb" in captured.err
