"""``gradsync demo``: the paper's comparison runs end to end and never overwrites a run."""

from __future__ import annotations

import pytest

from gradsync.cli.main import main


@pytest.mark.slow
def test_demo_prints_tables_and_writes_runs(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--iterations", "1", "--no-loop"]) == 0
    text = capsys.readouterr().out
    assert "alexnet" in text and "googlenet" in text and "cpu-sandybridge-fdr" in text
    assert (out / "summary.csv").exists()
    assert main(["demo", "--out", str(out), "--iterations", "1", "--no-loop"]) == 0
    assert len(list(tmp_path.iterdir())) == 2        # second run went to a timestamped sibling


@pytest.mark.mpi
@pytest.mark.slow
def test_demo_closes_the_loop_on_this_machine(tmp_path, capsys, mpiexec):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--iterations", "1"]) == 0
    text = capsys.readouterr().out
    assert "median |error|" in text
    loop = out / "loop"
    assert (loop / "runs").is_dir() and list(loop.glob("**/run.json"))
    # every held-out run has a prediction line: two models x two strategies, minus the fit run
    assert text.count("-n2 ") >= 3
