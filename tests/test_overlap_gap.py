"""HKBU's non-overlapped (``BSP-A2A``) lines beside its overlapped ones (``benchmarks.overlap_gap``).

The BSP rows are diagnostic: they pair one to one with the overlapped rows of
``published.csv``, carry the table's numbers, and the model's side of the comparison keeps the
invariant that overlapping never makes a step slower. No predicted number is asserted.
"""

from __future__ import annotations

import pytest

from benchmarks.overlap_gap import BSP_CSV, measured_and_model, pairs, step_ms
from benchmarks.published import DATA_DIR, DEFAULT_CSV, load_rows

#: The table's one-node (4 GPU) BSP-A2A throughputs, by model and network, as printed in
#: HKBU-HPML/ddl-benchmarks results/2020-05-29/README.md.
SOURCE_ONE_NODE = {("resnet50", "10gbe"): 925.020, ("resnet50", "ib100"): 920.280,
                   ("bert-large", "100gbe"): 52.900, ("bert-base", "ib100"): 555.700}


def bsp_rows():
    return load_rows(BSP_CSV)


def test_every_bsp_line_of_the_table_is_there_once():
    rows = bsp_rows()
    keys = {(r.model, r.cluster, r.gpus) for r in rows}
    assert len(rows) == len(keys) == 3 * 3 * 4        # models x networks x sizes
    assert {r.strategy for r in rows} == {"sync"}       # all-reduce after the backward pass


@pytest.mark.parametrize(("model", "network"), sorted(SOURCE_ONE_NODE))
def test_one_node_throughputs_are_the_tables(model, network):
    row, = [r for r in bsp_rows() if r.model == model and r.gpus == 4
            and r.cluster.endswith(f"-{network}.yaml")]
    assert row.throughput == SOURCE_ONE_NODE[model, network]


def test_each_bsp_row_pairs_with_the_overlapped_row_of_the_same_setup():
    found = pairs(load_rows(DEFAULT_CSV), bsp_rows())
    assert len(found) == len(bsp_rows())
    for wfbp, bsp in found:
        assert (wfbp.cluster, wfbp.model, wfbp.gpus, wfbp.batch, wfbp.throughput_1gpu) == \
               (bsp.cluster, bsp.model, bsp.gpus, bsp.batch, bsp.throughput_1gpu)
        assert wfbp.strategy == "bucketed" and bsp.strategy == "sync"


def test_step_time_is_samples_over_throughput():
    assert step_ms(256.0, 4, 64) == pytest.approx(1000.0)


def test_the_model_never_hides_less_than_nothing():
    """Overlapping the all-reduce never makes the simulated step slower (measured, it can)."""
    for wfbp, bsp in pairs(load_rows(DEFAULT_CSV), bsp_rows())[::6]:
        t = measured_and_model(wfbp, bsp, DATA_DIR)
        assert t["sim_wfbp"] <= t["sim_bsp"] + 1e-9
        assert t["sim_wfbp"] >= t["one"] - 1e-9
