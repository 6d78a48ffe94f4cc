"""calibration.collbench: nccl-tests / OSU / summary-CSV logs as one tidy table, and its errors.

Facts asserted about the real logs in ``../shared/data/nccl-tests/`` were read off the log text
(and the folders' SOURCES.md) by eye, never copied from the parser's output.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from calibration.collbench import (
    COLUMNS, CollectiveLogError, busbw_factor, is_collective_log, normalise_device,
    read_collective_log, read_collective_logs,
)
from calibration.collfit import PACKAGE_DATA
from vocab.errors import GradsyncError

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nccl-tests"
ABCI = DATA / "abci-v100"
TARTAN = DATA / "tartan-dgx1-p100"
GB = 1e9

needs_data = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"no public nccl-tests logs at {DATA} (shared/ beside the clone)")

#: What each ABCI log says, read off its text: ranks in the devices block, distinct hosts, and
#: the out-of-place/in-place busbw (GB/s) printed at 1 MiB and at 32 MiB.
ABCI_LOGS = {
    "allreduce_intra_vnode_job04.sh.7280532.nccl": (4, 1, (19.90, 20.00), (112.52, 112.43)),
    "allreduce_inter_vnode_job02.sh.7194532.nccl": (8, 2, (9.24, 9.21), (19.77, 19.77)),
    "allreduce_inter_vnode_job04.sh.7194533.nccl": (16, 4, (6.65, 6.67), (19.93, 19.92)),
    "allreduce_inter_vnode_job08.sh.7194534.nccl": (32, 8, (6.02, 6.06), (19.59, 19.59)),
    "allreduce_inter_vnode_job16.sh.7194535.nccl": (64, 16, (5.42, 5.47), (17.12, 16.83)),
    "allreduce_inter_vnode_job32.sh.7194536.nccl": (128, 32, (4.10, 4.11), (13.23, 13.48)),
}
#: What the Tartan CSVs do not state, from their SOURCES.md: 8 P100-SXM2 GPUs of one DGX-1;
#: the by-GPU bandwidth is at 1 GB.
TARTAN_FACTS = {
    "nccl?-by-size.csv": {"ranks": 8},
    "nccl?-by-gpus.csv": {"nbytes": 1 << 30},
    "*": {"device": "P100-SXM2", "nodes": 1},
}


def _at(frame, nbytes, placement="out_of_place"):
    rows = frame[(frame["nbytes"] == nbytes) & (frame["placement"] == placement)]
    assert len(rows) == 1, rows
    return rows.iloc[0]


# --------------------------------------------------------------------------------------------
# the real logs

@needs_data
def test_every_shared_log_is_recognised_and_sources_are_not():
    logs = sorted(p for p in DATA.rglob("*") if p.is_file() and p.name != "SOURCES.md")
    assert logs, "no logs found"
    assert all(is_collective_log(p) for p in logs)
    assert not is_collective_log(ABCI / "SOURCES.md")
    assert not is_collective_log(ABCI)


@needs_data
@pytest.mark.parametrize("name", sorted(ABCI_LOGS))
def test_abci_log_parses_to_what_its_text_says(name):
    ranks, hosts, at_1mib, at_32mib = ABCI_LOGS[name]
    frame = read_collective_log(ABCI / name)
    assert list(frame.columns) == list(COLUMNS)
    assert set(frame.tool) == {"nccl-tests"} and set(frame.op) == {"allreduce"}
    assert set(frame.ranks) == {ranks} and set(frame.nodes) == {hosts}
    assert set(frame.gpus_per_node) == {4}
    assert set(frame.device) == {"V100-SXM2-16GB"}
    assert set(frame.run) == {0} and set(frame.dtype) == {"float"} and set(frame.redop) == {"sum"}
    # sizes 4 B .. 32 MiB by factor 2, both placements for each
    for placement in ("out_of_place", "in_place"):
        sizes = sorted(frame[frame.placement == placement].nbytes)
        assert sizes == [4 << i for i in range(24)]
    for nbytes, (oop, ip) in ((1 << 20, at_1mib), (32 << 20, at_32mib)):
        assert _at(frame, nbytes).busbw_Bps == pytest.approx(oop * GB)
        assert _at(frame, nbytes, "in_place").busbw_Bps == pytest.approx(ip * GB)
    # the old 'error' column is a max error, not a count of wrong elements
    assert frame.wrong.isna().all() and frame.max_error.notna().all()
    # the logs do not print the NCCL version (SOURCES.md says 2.8)
    assert frame.era.isna().all() and frame.nccl_version.isna().all()
    assert not frame.duplicated(["file", "run", "op", "nbytes", "dtype", "redop",
                                 "placement"]).any()


@needs_data
def test_abci_2_node_times_and_average_as_printed():
    frame = read_collective_log(ABCI / "allreduce_inter_vnode_job02.sh.7194532.nccl")
    first = _at(frame, 4)
    assert first.time_s == pytest.approx(17.98e-6) and first.line == 24
    assert _at(frame, 4, "in_place").time_s == pytest.approx(18.00e-6)
    assert _at(frame, 32 << 20).time_s == pytest.approx(2970.9e-6)
    assert (frame.avg_busbw_Bps == 4.85188 * GB).all()


@needs_data
def test_busbw_identity_holds_on_every_text_log_within_printed_rounding():
    frame = read_collective_logs(ABCI)
    assert len(set(frame.file)) == len(ABCI_LOGS)
    factor = frame.apply(lambda r: busbw_factor(r.op, r.ranks), axis=1)
    # algbw and busbw are printed with 2 decimals: each is within 0.005 GB/s of the truth
    slack = (0.005 + 0.005 * factor) * GB + 1.0
    assert ((frame.busbw_Bps - frame.algbw_Bps * factor).abs() <= slack).all()
    # algbw = size / time, time printed to 4 significant digits (and >= 0.01 us)
    big = frame[frame.algbw_Bps >= 1 * GB]
    assert ((big.nbytes / big.time_s - big.algbw_Bps).abs() <= 0.01 * big.algbw_Bps).all()


@needs_data
def test_tartan_summaries_parse_with_the_facts_their_sources_give():
    frame = read_collective_logs(TARTAN, facts=TARTAN_FACTS)
    assert set(frame.op) == {"allreduce", "allgather", "reduce_scatter", "broadcast", "reduce"}
    assert set(frame.device) == {"P100-SXM2"} and set(frame.placement) == {"unspecified"}
    by_size = frame[frame.file.str.endswith("nccl2-by-size.csv") & (frame.op == "allreduce")]
    assert by_size.nbytes.min() == 8 and by_size.nbytes.max() == 1 << 30
    assert set(by_size.ranks) == {8}
    assert _at(by_size, 1 << 30, "unspecified").busbw_Bps == pytest.approx(62.44 * GB)
    assert _at(by_size, 128 << 20, "unspecified").busbw_Bps == pytest.approx(64.11 * GB)
    old = frame[frame.file.str.endswith("nccl1-by-size.csv") & (frame.op == "allreduce")]
    assert _at(old, 1 << 30, "unspecified").busbw_Bps == pytest.approx(7.69 * GB)
    assert set(old.era) == {"nccl1"} and set(by_size.era) == {"nccl2"}
    # all_gather's first two sizes print as 0 (rounded to no element per rank): dropped
    gather = frame[frame.file.str.endswith("nccl2-by-size.csv") & (frame.op == "allgather")]
    assert gather.nbytes.min() == 32 and len(gather) == 26
    # by GPU count at 1 GB: the 5-GPU cliff
    gpus = frame[frame.file.str.endswith("nccl2-by-gpus.csv") & (frame.op == "allreduce")]
    assert sorted(gpus.ranks) == list(range(1, 9)) and set(gpus.nbytes) == {1 << 30}
    bw = dict(zip(gpus.ranks, gpus.busbw_Bps))
    assert bw[5] == pytest.approx(5.57 * GB) and bw[8] == pytest.approx(62.24 * GB)
    # small-message time in ms by GPU count; its size is not stated anywhere
    lat = frame[frame.file.str.endswith("nccl2-latency-by-gpus.csv") & (frame.op == "allreduce")]
    assert dict(zip(lat.ranks, lat.time_s))[8] == pytest.approx(0.047e-3)
    assert lat.nbytes.isna().all() and lat.busbw_Bps.isna().all()


def test_the_packaged_nccl1_by_gpu_log_parses_as_its_siblings():
    # calibration/data holds Tartan's nccl-v1/bandwidth.txt, which the shared folder lacks
    path = PACKAGE_DATA / "tartan-dgx1-p100" / "nccl1-by-gpus.csv"
    frame = read_collective_logs(path, facts=TARTAN_FACTS)
    assert set(frame.era) == {"nccl1"} and set(frame.nbytes) == {1 << 30}
    reduce = frame[frame.op == "allreduce"]
    assert sorted(reduce.ranks) == list(range(1, 9))
    bw = dict(zip(reduce.ranks, reduce.busbw_Bps))
    assert bw[2] == pytest.approx(14.55 * GB) and bw[5] == pytest.approx(7.60 * GB)


@needs_data
def test_whole_shared_folder_reads_at_once():
    frame = read_collective_logs([ABCI, TARTAN], facts=TARTAN_FACTS)
    assert len(set(frame.file)) == len(ABCI_LOGS) + 5


@needs_data
def test_by_size_summary_without_ranks_is_a_clear_error():
    with pytest.raises(CollectiveLogError, match=r"nccl2-by-size\.csv:1: .*rank count"):
        read_collective_log(TARTAN / "nccl2-by-size.csv")


# --------------------------------------------------------------------------------------------
# broken copies of a real log

def _real_lines() -> list[str]:
    path = ABCI / "allreduce_inter_vnode_job02.sh.7194532.nccl"
    if not path.is_file():
        pytest.skip(f"no public nccl-tests logs at {DATA}")
    return path.read_text().splitlines(keepends=True)


def _line_of(lines: list[str], start: str) -> int:
    """1-based number of the first line that begins (after spaces) with ``start``."""
    return next(i for i, ln in enumerate(lines, 1) if ln.lstrip().startswith(start))


def _write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("".join(lines))
    return path


def test_header_without_rows_names_the_header_line(tmp_path):
    lines = _real_lines()
    header = _line_of(lines, "#       size")
    path = _write(tmp_path, "allreduce_cut.log", lines[:header + 1])
    with pytest.raises(CollectiveLogError, match=rf"allreduce_cut\.log:{header}: .*no data rows"):
        read_collective_log(path)


def test_row_cut_midway_names_its_line(tmp_path):
    lines = _real_lines()
    row = _line_of(lines, "1048576 ")
    cut = lines[:row - 1] + [lines[row - 1][:60]]
    path = _write(tmp_path, "allreduce_cut.log", cut)
    with pytest.raises(CollectiveLogError, match=rf"allreduce_cut\.log:{row}: row cut short"):
        read_collective_log(path)


def test_log_cut_after_a_whole_row_is_truncated(tmp_path):
    lines = _real_lines()
    row = _line_of(lines, "1048576 ")
    path = _write(tmp_path, "allreduce_cut.log", lines[:row])
    with pytest.raises(CollectiveLogError, match=rf":{row}: .*Avg bus bandwidth"):
        read_collective_log(path)


def test_garbled_number_names_line_and_column(tmp_path):
    lines = _real_lines()
    row = _line_of(lines, "1048576 ")
    lines[row - 1] = lines[row - 1].replace("9.24", "9.2x")
    path = _write(tmp_path, "allreduce_bad.log", lines)
    with pytest.raises(CollectiveLogError, match=rf"allreduce_bad\.log:{row}: column 'busbw'"):
        read_collective_log(path)


def test_two_gpu_models_in_one_devices_block(tmp_path):
    lines = _real_lines()
    rank5 = _line_of(lines, "#   Rank  5")
    lines[rank5 - 1] = lines[rank5 - 1].replace("V100-SXM2-16GB", "P100-SXM2-16GB")
    path = _write(tmp_path, "allreduce_mixed.log", lines)
    with pytest.raises(CollectiveLogError,
                       match=rf"allreduce_mixed\.log:{rank5}: mixed GPU models .*P100"):
        read_collective_log(path)


def test_rank_listed_twice_is_two_blocks_merged(tmp_path):
    lines = _real_lines()
    rank0 = _line_of(lines, "#   Rank  0")
    rank7 = _line_of(lines, "#   Rank  7")
    merged = lines[:rank7] + [lines[rank0 - 1]] + lines[rank7:]
    path = _write(tmp_path, "allreduce_merged.log", merged)
    with pytest.raises(CollectiveLogError, match=rf":{rank7 + 1}: rank 0 listed twice"):
        read_collective_log(path)


def test_devices_block_of_another_rank_count_breaks_the_busbw_identity(tmp_path):
    lines = _real_lines()
    rank4 = _line_of(lines, "#   Rank  4")
    rank7 = _line_of(lines, "#   Rank  7")
    path = _write(tmp_path, "allreduce_4.log", lines[:rank4 - 1] + lines[rank7:])
    # 4 ranks give factor 1.5, not the 1.75 of the 8 ranks that ran: the first row whose busbw
    # is big enough to show it is named
    with pytest.raises(CollectiveLogError,
                       match=r"allreduce_4\.log:\d+: out_of_place busbw .* x 1\.5 \(allreduce on 4"):
        read_collective_log(path)


def test_two_whole_runs_in_one_file_are_two_runs(tmp_path):
    lines = _real_lines()
    other = (ABCI / "allreduce_intra_vnode_job04.sh.7280532.nccl").read_text().splitlines(True)
    path = _write(tmp_path, "allreduce_two.log", lines + other)
    frame = read_collective_log(path)
    assert sorted(set(frame.run)) == [0, 1]
    assert dict(zip(frame.run, frame.ranks)) == {0: 8, 1: 4}
    assert dict(zip(frame.run, frame.nodes)) == {0: 2, 1: 1}
    second = frame[frame.run == 1]
    assert _at(second, 32 << 20).busbw_Bps == pytest.approx(112.52 * GB)
    assert second.line.min() == len(lines) + _line_of(other, "4 ")


def test_rows_of_another_run_without_its_header_are_an_error(tmp_path):
    lines = _real_lines()
    other = (ABCI / "allreduce_intra_vnode_job04.sh.7280532.nccl").read_text().splitlines(True)
    avg = _line_of(lines, "# Out of bounds")
    rows = [ln for ln in other if ln.lstrip()[:1].isdigit()]
    path = _write(tmp_path, "allreduce_glued.log", lines[:avg - 1] + rows + lines[avg - 1:])
    with pytest.raises(CollectiveLogError, match=rf"allreduce_glued\.log:{avg}: size 4 after "):
        read_collective_log(path)
    # and after the Avg line, without a header of their own
    path = _write(tmp_path, "allreduce_after.log", lines + rows)
    with pytest.raises(CollectiveLogError,
                       match=rf":{len(lines) + 1}: data row after the run's 'Avg bus"):
        read_collective_log(path)


def test_second_table_header_inside_one_run(tmp_path):
    lines = _real_lines()
    header = _line_of(lines, "#       size")
    avg = _line_of(lines, "# Out of bounds")
    doubled = lines[:avg - 1] + lines[header - 1:header + 1] + lines[avg - 1:]
    path = _write(tmp_path, "allreduce_double.log", doubled)
    with pytest.raises(CollectiveLogError, match=rf":{avg}: a second results table"):
        read_collective_log(path)


def test_removed_row_breaks_the_average(tmp_path):
    lines = _real_lines()
    row = _line_of(lines, "33554432 ")
    path = _write(tmp_path, "allreduce_edited.log", lines[:row - 1] + lines[row:])
    avg = _line_of(lines, "# Avg bus bandwidth") - 1
    with pytest.raises(CollectiveLogError, match=rf":{avg}: 'Avg bus bandwidth' 4.85188"):
        read_collective_log(path)


def test_launcher_noise_inside_the_table_is_skipped(tmp_path):
    lines = _real_lines()
    row = _line_of(lines, "1048576 ")
    noisy = lines[:row] + ["1 more process has sent help message help-mpi-btl-openib.txt\n",
                           "g0185:144167:144180 [0] NCCL INFO Launch mode Parallel\n"] + lines[row:]
    frame = read_collective_log(_write(tmp_path, "allreduce_noisy.log", noisy))
    assert len(frame) == 48 and _at(frame, 1 << 20).line == row


def test_garbled_size_names_the_size_column(tmp_path):
    lines = _real_lines()
    row = _line_of(lines, "1048576 ")
    lines[row - 1] = lines[row - 1].replace("1048576", "10485x6", 1)
    path = _write(tmp_path, "allreduce_bad.log", lines)
    with pytest.raises(CollectiveLogError, match=rf"allreduce_bad\.log:{row}: column 'size'"):
        read_collective_log(path)


def test_neither_format(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello\nthis is not a benchmark\n")
    assert not is_collective_log(path)
    with pytest.raises(CollectiveLogError, match=r"notes\.txt:1: neither nccl-tests nor OSU"):
        read_collective_log(path)
    (tmp_path / "bench.csv").write_text("op,nranks,nbytes,repeat,seconds\nallreduce,2,4,0,1e-5\n")
    assert not is_collective_log(tmp_path / "bench.csv")
    with pytest.raises(CollectiveLogError, match="folder holds no"):
        read_collective_logs(tmp_path)


def test_errors_are_gradsync_errors_of_one_line(tmp_path):
    path = tmp_path / "x.log"
    path.write_text("nothing\n")
    with pytest.raises(GradsyncError) as info:
        read_collective_log(path)
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------------------------
# other nccl-tests versions, written here

NEW_ALLGATHER = """\
[1,0]<stdout>:# nccl-tests version 2.13.8 nccl-headers=21805 nccl-library=21805
[1,0]<stdout>:# Collective test starting: all_gather_perf
[1,0]<stdout>:# nThread 1 nGpus 1 minBytes 0 maxBytes 2097152 step: 2(factor) warmup iters: 5 iters: 20 agg iters: 1 validation: 1 graph: 0
[1,0]<stdout>:#
[1,0]<stdout>:# Using devices
[1,0]<stdout>:#  Rank  0 Group  0 Pid  12345 on     nodeA device  0 [0x07] NVIDIA A100-SXM4-80GB
[1,1]<stdout>:#  Rank  1 Group  0 Pid  23456 on     nodeB device  0 [0x07] NVIDIA A100-SXM4-80GB
nodeA:12345:12345 [0] NCCL INFO NCCL version 2.18.5+cuda12.2
nodeA:12345:12350 [0] NCCL INFO Channel 00/02 :    0   1
[1,0]<stdout>:#
[1,0]<stdout>:#                                                              out-of-place                       in-place
[1,0]<stdout>:#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong
[1,0]<stdout>:#        (B)    (elements)                               (us)  (GB/s)  (GB/s)            (us)  (GB/s)  (GB/s)
nodeA:12345:12345 [0] NCCL INFO Launch mode Parallel
[1,0]<stdout>:           0             0     float    none      -1     6.36    0.00    0.00      0     6.40    0.00    0.00      0
[1,0]<stdout>:     1048576        131072     float    none      -1    100.0   10.49    5.24      0    101.0   10.38    5.19    N/A
[1,0]<stdout>:     2097152        262144     float    none      -1    150.0   13.98    6.99      0    152.0   13.80    6.90    N/A
[1,0]<stdout>:# Out of bounds values : 0 OK
[1,0]<stdout>:# Avg bus bandwidth    : 4.05333
[1,0]<stdout>:#
[1,0]<stdout>:# Collective test concluded: all_gather_perf
"""


def test_newer_nccl_tests_with_group_root_wrong_and_mpi_tags(tmp_path):
    path = tmp_path / "run.log"
    path.write_text(NEW_ALLGATHER)
    frame = read_collective_log(path)
    assert set(frame.op) == {"allgather"} and set(frame.ranks) == {2}
    assert set(frame.nodes) == {2} and set(frame.gpus_per_node) == {1}
    assert set(frame.device) == {"A100-SXM4-80GB"}
    assert set(frame.nccl_tests_version) == {"2.13.8"} and set(frame.nccl_version) == {"2.18.5"}
    assert set(frame.era) == {"nccl2"} and frame.redop.isna().all()
    assert sorted(set(frame.nbytes)) == [1 << 20, 2 << 20]  # the zero-byte row is dropped
    assert _at(frame, 1 << 20).wrong == 0
    assert _at(frame, 1 << 20, "in_place").wrong is pd.NA
    assert _at(frame, 2 << 20, "in_place").time_s == pytest.approx(152.0e-6)
    assert _at(frame, 2 << 20).busbw_Bps == pytest.approx(6.99 * GB)


OLD_ALLGATHER_NA = """\
===begin all_gather_perf test===
# nThread 1 nGpus 2 minBytes 8 maxBytes 16777216 step: 2(factor) warmup iters: 5 iters: 20 validation: 0
#
# Using devices
#   Rank  0 Pid  12979 on    Orlando device  0 [0x45] GeForce GTX 1080
#   Rank  1 Pid  12979 on    Orlando device  1 [0xc4] GeForce GTX 1080
#
#                                             out-of-place                       in-place
#       size         count    type     time   algbw   busbw  error     time   algbw   busbw  error
#        (B)    (elements)             (us)  (GB/s)  (GB/s)            (us)  (GB/s)  (GB/s)
     8388608       1048576   float    11258    0.75    0.37    N/A    11148    0.75    0.38    N/A
    16777216       2097152   float    22517    0.75    0.37    N/A    22296    0.75    0.38    N/A
# Out of bounds values : 0 OK
# Avg bus bandwidth    : 0.375
#
"""


def test_old_allgather_without_redop_and_with_na_error(tmp_path):
    path = tmp_path / "bench.out"
    path.write_text(OLD_ALLGATHER_NA)
    frame = read_collective_log(path)
    assert set(frame.op) == {"allgather"} and set(frame.ranks) == {2}
    assert set(frame.nodes) == {1} and set(frame.gpus_per_node) == {2}
    assert set(frame.device) == {"GeForce GTX 1080"}
    assert frame.wrong.isna().all() and frame.max_error.isna().all()
    assert _at(frame, 16 << 20).time_s == pytest.approx(22517e-6)


NCCL1_TEST = """\
# Using devices
#   Rank  0 uses device  0 [0x06] Tesla P100-SXM2-16GB
#   Rank  1 uses device  1 [0x07] Tesla P100-SXM2-16GB
#   Rank  2 uses device  2 [0x0a] Tesla P100-SXM2-16GB
#   Rank  3 uses device  3 [0x0b] Tesla P100-SXM2-16GB

#                                                 out-of-place                    in-place
#      bytes             N    type      op     time  algbw  busbw      res     time  algbw  busbw      res
     1048576       1048576    char     sum    0.200   5.24   7.86    0e+00    0.210   4.99   7.49    0e+00
     1048576        262144   float     sum    0.180   5.83   8.74    1e-07    0.190   5.52   8.28    1e-07

 Out of bounds values : 0 OK
 Avg bus bandwidth    : 8.0925

"""


def test_nccl1_test_output_in_ms(tmp_path):
    path = tmp_path / "all_reduce_test.log"
    path.write_text(NCCL1_TEST + NCCL1_TEST)
    frame = read_collective_log(path)
    assert set(frame.op) == {"allreduce"} and set(frame.format) == {"nccl1-test"}
    assert set(frame.era) == {"nccl1"} and set(frame.run) == {0, 1}
    assert set(frame.ranks) == {4} and set(frame.nodes) == {1} and set(frame.gpus_per_node) == {4}
    assert set(frame.device) == {"P100-SXM2-16GB"} and set(frame.dtype) == {"char", "float"}
    char = frame[(frame.run == 0) & (frame.dtype == "char") & (frame.placement == "out_of_place")]
    assert char.iloc[0].time_s == pytest.approx(0.200e-3)
    assert char.iloc[0].busbw_Bps == pytest.approx(7.86 * GB)


def test_unnamed_collective_is_inferred_only_when_unambiguous(tmp_path):
    path = tmp_path / "run.txt"
    path.write_text(NCCL1_TEST)  # no name in the text or the file name; 4 ranks: allreduce
    assert set(read_collective_log(path).op) == {"allreduce"}
    path.write_text(OLD_ALLGATHER_NA.replace("===begin all_gather_perf test===\n", ""))
    with pytest.raises(CollectiveLogError, match=r"run\.txt:\d+: the log does not say which"):
        read_collective_log(path)
    assert set(read_collective_log(path, facts={"run.txt": {"op": "allgather"}}).op) == {
        "allgather"}


# --------------------------------------------------------------------------------------------
# OSU

OSU_PLAIN = """\
# OSU MPI Allreduce Latency Test v5.6.2
# Size       Avg Latency(us)
4                       1.95
8                       1.93
1048576               512.30
"""
OSU_FULL = """\
# OSU MPI Allreduce Latency Test v7.3
# Datatype: MPI_CHAR.
# Size       Avg Latency(us)   Min Latency(us)   Max Latency(us)  Iterations
4                       2.03              1.58              2.44        1000
1048576               498.70            480.11            510.02         100
"""


@pytest.mark.parametrize("text", [OSU_PLAIN, OSU_FULL], ids=["avg", "avg-min-max-iters"])
def test_osu_allreduce_with_ranks_and_nodes_given(tmp_path, text):
    path = tmp_path / "osu_allreduce.txt"
    path.write_text(text)
    assert is_collective_log(path)
    frame = read_collective_logs([path], osu_ranks=16, osu_nodes=4)
    assert set(frame.tool) == {"osu"} and set(frame.op) == {"allreduce"}
    assert set(frame.ranks) == {16} and set(frame.nodes) == {4} and set(frame.gpus_per_node) == {4}
    assert frame.nbytes.iloc[0] == 4 and frame.nbytes.iloc[-1] == 1 << 20
    last = frame.iloc[-1]
    want = 512.30e-6 if text is OSU_PLAIN else 498.70e-6
    assert last.time_s == pytest.approx(want)
    assert last.algbw_Bps == pytest.approx((1 << 20) / want)
    assert last.busbw_Bps == pytest.approx(last.algbw_Bps * 2 * 15 / 16)


def test_osu_without_ranks_says_what_is_missing(tmp_path):
    path = tmp_path / "osu_allreduce.txt"
    path.write_text(OSU_PLAIN)
    with pytest.raises(CollectiveLogError,
                       match=r"osu_allreduce\.txt:1: OSU output does not state the rank and "
                             r"node count; expected osu_ranks="):
        read_collective_log(path)
    with pytest.raises(CollectiveLogError, match=r"state the node count"):
        read_collective_log(path, osu_ranks=16)


def test_osu_sidecar_gives_ranks_nodes_and_device(tmp_path):
    path = tmp_path / "osu_allreduce.txt"
    path.write_text(OSU_FULL)
    (tmp_path / "osu_allreduce.txt.meta.json").write_text(
        '{"ranks": 8, "nodes": 8, "device": "Xeon E5-2680"}')
    frame = read_collective_logs(tmp_path)  # the sidecar itself is not read as a log
    assert set(frame.ranks) == {8} and set(frame.gpus_per_node) == {1}
    assert set(frame.device) == {"Xeon E5-2680"}


def test_osu_truncated_and_garbled(tmp_path):
    path = tmp_path / "osu_allreduce.txt"
    path.write_text(OSU_FULL.rsplit("\n", 2)[0] + "\n1048576               498.70\n")
    with pytest.raises(CollectiveLogError, match=r"osu_allreduce\.txt:5: row cut short"):
        read_collective_log(path, osu_ranks=2, osu_nodes=2)
    path.write_text(OSU_PLAIN.replace("1.93", "1.9?"))
    with pytest.raises(CollectiveLogError, match=r"osu_allreduce\.txt:4: column 'avg latency"):
        read_collective_log(path, osu_ranks=2, osu_nodes=2)
    path.write_text(OSU_PLAIN.split("4 ")[0])
    with pytest.raises(CollectiveLogError, match=r"osu_allreduce\.txt:2: OSU test without data"):
        read_collective_log(path, osu_ranks=2, osu_nodes=2)


def test_osu_allgather_size_is_per_rank():
    assert busbw_factor("allgather", 4) == pytest.approx(0.75)


def test_osu_allgather_nbytes_follow_nccl_tests(tmp_path):
    path = tmp_path / "osu_allgather.txt"
    path.write_text("# OSU MPI Allgather Latency Test v5.6.2\n# Size       Avg Latency(us)\n"
                    "1024                   10.00\n")
    row = read_collective_log(path, osu_ranks=4, osu_nodes=1).iloc[0]
    assert row.op == "allgather" and row["nbytes"] == 4096
    assert row.busbw_Bps == pytest.approx(4096 / 10e-6 * 0.75)


# --------------------------------------------------------------------------------------------
# small pieces

def test_device_names_are_normalised():
    assert normalise_device("Tesla V100-SXM2-16GB") == "V100-SXM2-16GB"
    assert normalise_device("NVIDIA A100-SXM4-80GB") == "A100-SXM4-80GB"
    assert normalise_device("NVIDIA H100 80GB HBM3") == "H100 80GB HBM3"


def test_bus_factors_are_nccl_tests():
    assert busbw_factor("allreduce", 8) == pytest.approx(1.75)
    assert busbw_factor("reduce_scatter", 8) == pytest.approx(0.875)
    assert busbw_factor("broadcast", 8) == 1.0
    assert busbw_factor("allreduce", 1) == 0.0
