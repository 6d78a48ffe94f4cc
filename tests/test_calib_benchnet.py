"""bench-net: size parsing, the launcher's errors, and (under MPI) a short real run."""

from __future__ import annotations

import pytest

from calibration.benchnet import BenchError, parse_sizes, read_bench, run_bench_net
from gradsync.cli.main import main
from vocab.errors import SpecError


def test_size_ranges_are_powers_of_two_by_default():
    sizes = parse_sizes("4B..64MiB")
    assert sizes[0] == 4 and sizes[-1] == 64 * 2**20 and len(sizes) == 25
    assert parse_sizes("4B..1KiB", factor=4) == [4, 16, 64, 256, 1024]
    assert parse_sizes("1KiB, 4") == [4, 1024]


def test_bad_sizes_name_the_field():
    with pytest.raises(SpecError, match="sizes"):
        parse_sizes("64MiB..4B")
    with pytest.raises(SpecError, match="sizes"):
        parse_sizes("3")


def test_a_directory_without_a_table_is_a_clear_error(tmp_path):
    with pytest.raises(BenchError, match="no bench.csv"):
        read_bench(tmp_path)


def test_cli_rejects_one_rank_with_exit_2(tmp_path, capsys):
    assert main(["bench-net", "-n", "1", "--out", str(tmp_path)]) == 2
    assert "-n/--ranks: got '1', expected a whole number >= 2" in capsys.readouterr().err


@pytest.mark.mpi
def test_a_short_real_run_writes_the_tidy_table(tmp_path, mpiexec):
    table = run_bench_net(2, tmp_path / "bench", sizes="4B..64KiB", repeats=2, timeout_s=120)
    assert list(table.columns) == ["op", "nranks", "nbytes", "repeat", "seconds"]
    assert {"allreduce", "iallreduce", "reduce_scatter", "allgather", "compute"} <= set(table.op)
    assert (table.seconds > 0).all() and set(table.nranks) == {2}
    assert (tmp_path / "bench" / "run.json").exists()
