"""The held-out published rows (``benchmarks/published/holdout.csv``): well-formed, sourced,
apart from the tuned rows, and predicted without breaking invariants of the model.

Nothing here checks a predicted number: the holdout is there to measure the model, so its
errors are reported (``python -m benchmarks.published --rows holdout``), never asserted.
"""

from __future__ import annotations

import csv
import json
import re
from functools import lru_cache
from pathlib import Path

import pytest
import yaml
from hwmodels.stacks import load_stack
from simulator.trust import BANDS_FILE, load_bands

from benchmarks import published
from benchmarks.published import (
    DATA_DIR, DEFAULT_CSV, HOLDOUT_CSV, efficiency, load_rows, predict_csv, row_cluster,
    simulated_throughput,
)

#: Slack on "never above perfect scaling": published tables round their one-GPU figure.
TOL = 0.02


@lru_cache(maxsize=1)
def holdout_results():
    return predict_csv(HOLDOUT_CSV)


def header(path: Path) -> list[str]:
    with path.open(newline="") as handle:
        return next(csv.reader(handle))


def source_document(source: str) -> str:
    """The document a source cell names: ``owner/repo`` and the file or issue after it."""
    return " ".join(source.replace(":", " ").split()[:2])


def test_the_holdout_has_the_published_columns_and_every_row_loads():
    assert header(HOLDOUT_CSV) == header(DEFAULT_CSV)
    rows = load_rows(HOLDOUT_CSV)
    assert 30 <= len(rows) <= 300  # a sanity bound on the file, not on any prediction
    keys = [(r.set, r.cluster, r.nodes, r.gpus_per_node, r.model, r.batch, r.precision)
            for r in rows]
    assert len(set(keys)) == len(keys), "a published number appears twice"


def test_every_row_names_its_document_and_table():
    for row in load_rows(HOLDOUT_CSV):
        # a repository path (owner/name ...) and the table or row it was read from, quoted
        assert re.match(r"[\w.-]+/[\w.-]+", row.source), row.source
        assert "'" in row.source and "as published" in row.source, row.source


def test_the_holdout_shares_no_source_with_the_tuned_rows():
    tuned = {source_document(r.source) for r in load_rows(DEFAULT_CSV)}
    held = {source_document(r.source) for r in load_rows(HOLDOUT_CSV)}
    assert not tuned & held


def test_published_efficiency_is_at_most_perfect_scaling():
    for row in load_rows(HOLDOUT_CSV):
        assert 0 < row.published_efficiency <= 1 + TOL, (row.set, row.gpus)


def test_every_cluster_builds_at_its_rows_sizes_and_at_one_gpu():
    for row in load_rows(HOLDOUT_CSV):
        assert row_cluster(row, DATA_DIR).total_devices == row.gpus
        assert row_cluster(row, DATA_DIR, 1).total_devices == 1


def _figures(node, where=""):
    """Every ``{value, source}`` figure in a parsed cluster file, with where it is."""
    if isinstance(node, dict):
        if "value" in node:
            yield where, node
        else:
            for key, child in node.items():
                yield from _figures(child, f"{where}.{key}")


def test_the_holdout_cluster_files_are_well_formed_and_every_figure_sourced():
    files = {r.cluster for r in load_rows(HOLDOUT_CSV) if r.cluster.endswith(".yaml")}
    assert files
    for name in files:
        raw = yaml.safe_load((DATA_DIR / name).read_text())
        assert raw["name"] == Path(name).stem
        assert len(raw["source"]) > 20
        figures = list(_figures(raw))
        assert figures
        for where, figure in figures:
            assert set(figure) == {"value", "source"}, (name, where)
            assert len(str(figure["source"]).strip()) > 5, (name, where)


def test_no_prediction_beats_perfect_scaling_and_every_row_is_predicted():
    for r in holdout_results():
        assert r.predicted_efficiency is not None, (r.row.set, r.failure)
        assert 0 < r.predicted_efficiency <= 1 + TOL, (r.row.set, r.row.gpus)


def test_more_nodes_never_raise_the_predicted_efficiency():
    """Per-GPU throughput over the same network falls (or holds) as nodes are added, up to
    one Horovod cycle: a collective waits for the next tick of the stack's background loop, so
    an iteration's time moves in steps of ``cycle_s`` and a slightly slower network can land
    on the tick before (with Tensor Fusion, a later tick fuses more tensors into fewer rounds)."""
    multi = [r for r in load_rows(HOLDOUT_CSV) if r.nodes > 1]
    assert multi
    for row in multi:
        cycle_s = load_stack(row.stack).cycle_s if row.stack else 0.0
        sizes = [n for n in (1, 2, 4, 8, 16) if n <= row.nodes]
        effs = [efficiency(simulated_throughput(row, DATA_DIR, n * row.gpus_per_node),
                           n * row.gpus_per_node, row.throughput_1gpu) for n in sizes]
        for fewer, more in zip(effs, effs[1:]):
            iteration_s = row.batch / (fewer * row.throughput_1gpu)
            one_cycle = fewer * cycle_s / iteration_s
            assert more <= fewer + 0.005 + one_cycle, (row.set, sizes, effs)


def test_rdma_is_never_predicted_slower_than_tcp_on_the_same_wire():
    """Horovod's 25 GbE rows: the same machines over RoCE and over TCP sockets."""
    by_cluster = {}
    for r in holdout_results():
        if r.row.set.startswith("horovod2017") and "-25g" in r.row.set:
            by_cluster[(r.row.model, Path(r.row.cluster).stem)] = r.predicted_efficiency
    models = {model for model, _ in by_cluster}
    assert models
    for model in models:
        assert by_cluster[(model, "horovod2017-pascal-25g-roce")] >= \
            by_cluster[(model, "horovod2017-pascal-25g-tcp")]


@pytest.mark.parametrize("rows, csvs", [("holdout", [HOLDOUT_CSV]),
                                        ("all", [DEFAULT_CSV, HOLDOUT_CSV])])
def test_rows_flag_predicts_the_named_sets(capsys, rows, csvs):
    assert published.main(["--rows", rows, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["summary"]["rows"] == sum(len(load_rows(p)) for p in csvs)
    classes = report["by_class"]
    assert sum(c["rows"] for c in classes.values()) == report["summary"]["rows"]
    assert sum(c["within_5_points"] for c in classes.values()) == \
        report["summary"]["within_5_points"]
    bands = load_bands()["bands"]
    for name, c in classes.items():
        if name in bands:        # the shipped band's width, and how many rows fall inside it
            assert c["band_points"] == pytest.approx(bands[name]["points"])
            assert 0 <= c["within_band"] <= c["rows"] - c["failed"]
        else:
            assert c["band_points"] is None and c["within_band"] is None


def test_the_holdout_never_writes_trust_bands(tmp_path, capsys):
    out = tmp_path / "bands.yaml"
    assert published.main(["--rows", "holdout", "--write-bands", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--write-bands" in err and "holdout" in err
    assert not out.exists()


def test_the_shipped_bands_count_the_held_out_rows_inside_them():
    """The band file's held-out check is the holdout's own errors against each class's band."""
    bands = load_bands(BANDS_FILE)["bands"]
    for setup, band in bands.items():
        errors = [r.error_points for r in holdout_results() if r.setup_class == setup]
        assert band["holdout_rows"] == len(errors), setup
        # The file rounds the band to 0.01 points; an error that close to its edge is rare.
        assert band["holdout_within"] == sum(abs(e) <= band["points"] + 0.005
                                             for e in errors), setup
