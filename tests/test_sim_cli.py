"""``gradsync simulate`` (and the Python API's result object) as a user meets them."""

from __future__ import annotations

import json

import pytest

from gradsync.cli.main import main
from simulator.api import compare, simulate
from vocab.runrecord import read_run_record
from vocab.trace import read_trace

JSON_KEYS = {"strategy", "iteration_time_s", "throughput_samples_s", "speedup_vs_sync",
             "exposed_comm_s", "memory_bytes_per_rank"}


def test_json_output_has_one_result_per_strategy(capsys):
    assert main(["simulate", "--cluster", "dgx1-p100", "--model", "alexnet-ci", "--batch", "16",
                 "--strategy", "sync,layerwise,bucketed,delayed", "--iterations", "2",
                 "--json"]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert [r["strategy"] for r in results] == ["sync", "layerwise", "bucketed", "delayed"]
    for r in results:
        assert JSON_KEYS <= set(r)
        assert r["iteration_time_s"] > 0 and r["memory_bytes_per_rank"] > 0
    assert results[0]["speedup_vs_sync"] == pytest.approx(1.0)


def test_human_table_names_every_strategy(capsys):
    assert main(["simulate", "--model", "googlenet-ci", "--strategy", "sync,delayed",
                 "--iterations", "1", "--transport", "host"]) == 0
    out = capsys.readouterr().out
    assert "sync" in out and "delayed" in out and "vs sync" in out and "host" in out


@pytest.mark.parametrize("args,needle", [
    (["--strategy", "bogus"], "strategy"),
    (["--bucket-mb", "0"], "bucket"),
    (["--bucket-mb", "-3"], "bucket"),
    (["--batch", "0"], "batch"),
    (["--batch", "-4"], "batch"),
    (["--strategy", "delayed", "--staleness", "0"], "staleness"),
    (["--nodes", "100000"], "nodes"),
    (["--cluster", "no-such-cluster"], "cluster"),
    (["--model", "no-such-model"], "no-such-model"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, args, needle):
    assert main(["simulate", "--model", "alexnet-ci", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err and "Traceback" not in err


def test_bad_cluster_file_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nnode: {topology: dgx1_p100}\nfabric: {bandwidth: -5 GB/s}\n")
    assert main(["simulate", "--cluster", str(bad), "--model", "alexnet-ci"]) == 2
    assert "bad.yaml" in capsys.readouterr().err


def test_out_writes_runs_and_never_overwrites_another(tmp_path, capsys):
    out = tmp_path / "runs"
    args = ["simulate", "--model", "alexnet-ci", "--strategy", "sync,bucketed", "--iterations",
            "1", "--out", str(out)]
    assert main(args) == 0
    assert len(read_trace(out / "sync")) > 0
    assert read_run_record(out / "bucketed")["specs"]["strategy"]["name"] == "bucketed"
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main([*args[:-2], "--strategy", "sync,delayed", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "--force" in err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert main([*args, "--force"]) == 0         # replaced only when asked


def test_result_object_offers_plots_chrome_trace_and_summary(tmp_path):
    result = simulate("dgx1-p100", "alexnet-ci", 16, "bucketed", iterations=2)
    assert list(result.summary["warmup"]) == [True, True, False, False]   # vocab.timing
    assert result.throughput_samples_s == pytest.approx(8 * 16 / result.iteration_time_s)
    assert 0 < result.speedup_vs_single <= 8 + 1e-9
    assert result.plot_timeline().axes
    path = result.to_chrome_trace(tmp_path / "t.json")
    assert json.loads(path.read_text())["traceEvents"]
    comparison = compare(["layerwise", "delayed"], model="alexnet-ci", batch=16, iterations=2)
    assert set(comparison.speedup_vs_sync) == {"layerwise", "delayed"}
    assert comparison.plot_breakdown().axes
    assert comparison.table().loc["delayed", "memory_bytes_per_rank"] > \
        comparison.table().loc["layerwise", "memory_bytes_per_rank"]
