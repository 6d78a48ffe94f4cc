"""``python -m executor.sequence RUNS.json``: several executor runs in one MPI job (the
protocol's ``one_job``; the runs themselves are checked in test_calib_protocol)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("mpi4py")


@pytest.mark.mpi
@pytest.mark.parametrize("text, says", [('{"runs": []}', "JSON list"), ("[]", "argument lists"),
                                        ('[["--model", 3]]', "argument lists")])
def test_a_bad_runs_file_is_one_line_and_exit_2(tmp_path, text, says):
    runs = tmp_path / "runs.json"
    runs.write_text(text)
    done = subprocess.run([sys.executable, "-m", "executor.sequence", str(runs)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    err = done.stderr.strip()
    assert err.count("\n") == 0 and says in err and "Traceback" not in err
