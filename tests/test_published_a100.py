"""The DGX A100 rows of issue 11: their machine files, the accumulation runs' ``sync`` under
Horovod, and the ``baseline_batch`` column of strong-scaling tables.

Expected values come from the sources' rules and from closed forms over the roofline profile,
never from a prediction's output.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from benchmarks.published import (
    DATA_DIR, DEFAULT_CSV, HOLDOUT_CSV, PublishedRow, RowError, load_rows, predict_row,
)
from hwmodels.cluster import load_cluster
from hwmodels.devices import get_device
from simulator.api import simulate
from simulator.roofline import roofline_profile
from vocab.strategies.bucketed import size_buckets
from vocab.workload import load_workload

A100_80 = "clusters/dgx-a100-80gb.yaml"
MiB = 1 << 20


def figures(raw, where=""):
    """Every ``{value, source}`` figure of a cluster file, with where it sits."""
    if isinstance(raw, dict):
        if "value" in raw:
            yield where, raw
            return
        for key, child in raw.items():
            yield from figures(child, f"{where}.{key}")


def test_the_80gb_cluster_file_loads_at_its_rows_sizes_and_sources_every_figure():
    raw = yaml.safe_load((DATA_DIR / A100_80).read_text())
    assert raw["name"] == Path(A100_80).stem
    assert len(raw["source"]) > 20
    found = list(figures(raw))
    assert len(found) >= 8
    for where, figure in found:
        assert set(figure) == {"value", "source"}, where
        assert len(str(figure["source"]).strip()) > 5, where
    sizes = {r.nodes for r in load_rows(DEFAULT_CSV) + load_rows(HOLDOUT_CSV)
             if r.cluster == A100_80}
    assert max(sizes) == 32
    for nodes in sizes:
        cluster = load_cluster(str(DATA_DIR / A100_80), nodes=nodes)
        assert cluster.nodes == nodes and cluster.total_devices == 8 * nodes
        assert cluster.device.name == "a100-sxm4-80gb"


def test_the_80gb_a100_differs_from_the_40gb_one_only_in_memory_and_its_bandwidth():
    small, big = get_device("a100-sxm4"), get_device("a100-sxm4-80gb")
    assert big.memory_bytes == 2 * small.memory_bytes
    # A100 datasheet: 1555 GB/s HBM2 (40 GB), 2039 GB/s HBM2e (80 GB SXM)
    assert big.mem_bandwidth_Bps == pytest.approx(2039e9)
    assert small.mem_bandwidth_Bps == pytest.approx(1555e9)
    assert big.peak_flops == small.peak_flops
    assert big.rate_flops("amp") == small.rate_flops("amp")


def test_every_a100_row_names_a_deeplearningexamples_table():
    for row in load_rows(DEFAULT_CSV) + load_rows(HOLDOUT_CSV):
        if "dgxa100" in row.set:
            assert row.source.startswith("NVIDIA/DeepLearningExamples "), row.set
            assert "'" in row.source and "as published" in row.source, row.set
            assert "a100" in row.cluster


# ----------------------------------------------------------- sync under Horovod's fusion

def allreduces_of_last_step(result):
    trace = result.trace
    last = trace[(trace.iteration == trace.iteration.max()) & (trace["rank"] == 0)]
    return last[last.op == "allreduce"], last[last.op == "backward"]


def test_sync_under_horovod_is_one_cycles_fusion_posted_after_the_backward_pass():
    """Every gradient is handed over at once (after the last backward pass, as after gradient
    accumulation), so one cycle fuses all of them: greedy buffers of at most the fusion
    threshold in ready order, the size rule with every bucket at the threshold."""
    result = simulate("dgx-a100", "bert-large", 64, "sync", stack="horovod-0.19", nodes=2,
                      iterations=2)
    threshold = result.specs["strategy"]["bucket_bytes"]
    assert threshold == 64 * MiB      # Horovod's HOROVOD_FUSION_THRESHOLD before v0.21
    grads = [layer.grad_bytes for layer in load_workload("bert-large").layers]
    expected = size_buckets(grads, threshold, threshold)
    sent, backward = allreduces_of_last_step(result)
    assert len(sent) == len(expected) > 1
    assert sorted(sent.nbytes) == sorted(m.nbytes for m in expected)
    assert sent.start_s.min() >= backward.end_s.max() - 1e-12


def test_sync_under_ddp_stays_one_message_of_every_gradient():
    result = simulate("dgx-a100", "bert-large", 64, "sync", stack="ddp", nodes=2, iterations=2)
    sent, backward = allreduces_of_last_step(result)
    assert len(sent) == 1
    assert int(sent.nbytes.iloc[0]) == load_workload("bert-large").total_grad_bytes
    assert sent.start_s.min() >= backward.end_s.max() - 1e-12


# ----------------------------------------------------------- baseline_batch

def one_gpu_row(batch: int, baseline_batch: int | None) -> PublishedRow:
    return PublishedRow("s", "src", "dgx-a100", 1, 1, "bert-large", batch, "amp", "nccl2.8", "sync",
                        None, throughput_1gpu=300.0, throughput=290.0, row=1,
                        baseline_batch=baseline_batch)


def test_a_row_without_baseline_batch_takes_its_own_batch():
    row = one_gpu_row(256, None)
    assert row.base_batch == 256
    same = predict_row(one_gpu_row(256, 256), DEFAULT_CSV.parent).predicted_efficiency
    assert predict_row(row, DEFAULT_CSV.parent).predicted_efficiency == pytest.approx(same)


def test_one_gpu_at_a_smaller_batch_than_its_baseline_pays_the_update_more_often():
    """Closed form on one GPU (no collective; the bare library, no framework costs): the profile's level is fixed at the baseline's
    batch B0, so the efficiency at batch B is per-sample time at B0 over per-sample time at B,
    ``(iter(B0) / B0) / (iter(B) / B)``, from the roofline profiles alone."""
    device = load_cluster("dgx-a100").device
    model = load_workload("bert-large")
    b, b0 = 256, 8192
    # The benchmark shapes its profiles at the model's own rates (fp32) and scales one level
    # for both batches, so the ratio does not depend on the one-GPU rate.
    at_b = roofline_profile(model, device, b).iteration_s
    at_b0 = roofline_profile(model, device, b0).iteration_s
    expected = (at_b0 / b0) / (at_b / b)
    assert expected < 1.0        # the update, once per step, is spread over fewer samples
    result = predict_row(one_gpu_row(b, b0), DEFAULT_CSV.parent)
    assert result.predicted_efficiency == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("bad", ["0", "-4", "half"])
def test_a_bad_baseline_batch_is_one_line_naming_the_column(tmp_path, bad):
    header = ("set,source,cluster,nodes,gpus_per_node,model,batch,precision,stack,strategy,"
              "throughput_1gpu,throughput,baseline_batch\n")
    path = tmp_path / "rows.csv"
    path.write_text(header + f"s,src,dgx-a100,1,8,bert-large,256,amp,ddp,sync,300,2300,{bad}\n")
    with pytest.raises(RowError) as info:
        load_rows(path)
    message = str(info.value)
    assert "column baseline_batch" in message and "\n" not in message
