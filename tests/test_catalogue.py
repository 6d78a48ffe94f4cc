"""The hardware catalogue, entry by entry but checked by one rule each: every figure of every
device and fabric has a source, every number is physically possible, ``gradsync hw show``
shows every device, fabric and preset, and a cluster file naming each device and fabric
simulates (a smoke run on a tiny workload).

A bare figure (``peak_flops: 8.1 TFLOP/s``) is the datasheet's, so the entry's ``source`` must
state that very number; anything else carries its own ``{value, source}``. A fabric's only
bare figure may be its nominal ``line_rate``, which the standard named in its source defines.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from gradsync.cli.main import main
from hwmodels import devices as devices_module
from hwmodels import fabrics as fabrics_module
from hwmodels.cluster import list_presets
from hwmodels.devices import get_device, list_devices
from hwmodels.fabrics import get_fabric, list_fabrics
from hwmodels.specfile import read_yaml
from simulator.api import simulate
from vocab.workload import load_workload

DEVICE_DATA = read_yaml(devices_module.DATA_FILE)
FABRIC_DATA = read_yaml(fabrics_module.DATA_FILE)
SMOKE_MODEL, SMOKE_BATCH = "resnet18-ci", 16


def states(source: str, number: str) -> bool:
    """Whether ``source`` states ``number`` as a number of its own ("2" in "2 TB/s", not in
    "2039 GB/s" or "1.2 TB/s")."""
    return re.search(rf"(?<![\d.]){re.escape(number)}(?!\.?\d)", source) is not None


@pytest.mark.parametrize("name", list(DEVICE_DATA))
def test_every_device_figure_has_a_source(name: str) -> None:
    raw = DEVICE_DATA[name]
    assert raw.get("source"), f"{name}: no source"
    for key, value in raw.items():
        if key in ("kind", "source"):
            continue
        if isinstance(value, dict):
            assert value.get("source"), f"{name}.{key}: no source"
        else:
            number = str(value).split()[0]
            assert states(raw["source"], number), f"{name}.{key}: {value} is not in its source"


@pytest.mark.parametrize("name", list(FABRIC_DATA))
def test_every_fabric_figure_has_a_source(name: str) -> None:
    raw = FABRIC_DATA[name]
    assert raw.get("source"), f"{name}: no source"
    for key, value in raw.items():
        if key in ("kind", "source", "line_rate"):
            continue
        assert isinstance(value, dict) and value.get("source"), f"{name}.{key}: no source"


@pytest.mark.parametrize("name", list_devices())
def test_device_figures_are_physically_possible(name: str) -> None:
    d = get_device(name)
    if d.kind == "cpu":
        # a dual-socket node: 0.1-10 TFLOP/s of AVX, 10-1000 GB/s of DDR, 1-2048 GB
        assert 1e11 <= d.peak_flops <= 1e13 and 1e10 <= d.mem_bandwidth_Bps <= 1e12
        assert 1e9 <= d.memory_bytes <= 2048e9 and d.speed_spread == 0
        return
    # One GPU (or one GCD): Kepler's 4 to Ada's 92 TFLOP/s fp32, GDDR5's 240 GB/s to HBM3's
    # 4 TB/s, 11 to 94 GB; a roofline ridge between 5 and 300 FLOP per byte.
    assert 1e12 <= d.peak_flops <= 2e14
    assert 1e11 <= d.mem_bandwidth_Bps <= 1e13
    assert 4e9 <= d.memory_bytes <= 2e11
    assert 5 <= d.peak_flops / d.mem_bandwidth_Bps <= 300
    assert 0.1 <= d.efficiency <= 0.9
    assert 0 < d.speed_spread < 0.1
    # Interference: none up to one kernel's measured slow-down beside NCCL (nccl#1428: a GEMM
    # +76 %, attention +83 % on an A100); a factor of 2 would be no overlap at all.
    assert 0 <= d.overlap_interference <= 0.85
    if d.fp16_flops:
        # half precision is never slower than fp32 at the peak nor at the layer rate, and a
        # layer never runs faster than the peak it runs at
        assert d.peak_flops <= d.fp16_flops <= 20 * d.peak_flops
        assert d.rate_flops("fp32") <= d.rate_flops("amp") <= d.fp16_flops
    if d.bf16_flops:
        assert d.fp16_flops and d.peak_flops <= d.bf16_flops <= d.fp16_flops
        assert d.rate_flops("bf16") <= d.bf16_flops
    if not d.fp16_flops:
        assert d.rate_flops("amp") == d.rate_flops("fp32")   # no fast fp16: amp at fp32 rate


@pytest.mark.parametrize("name", list_fabrics())
def test_fabric_figures_are_physically_possible(name: str) -> None:
    f = get_fabric(name)
    assert 100e6 <= f.line_rate_Bps <= 100e9                # 1 Gb/s .. 800 Gb/s
    assert 0.7 * f.line_rate_Bps <= f.bandwidth_Bps <= f.line_rate_Bps
    assert 0.5e-6 <= f.latency_s <= 100e-6
    assert 0 < f.nccl_Bps <= f.bandwidth_Bps
    if f.collective_bandwidth_Bps:
        assert "collective_bandwidth:" in f.source


@pytest.mark.parametrize("name", [*list_devices(), *list_fabrics()])
def test_hw_show_gives_every_figure_of_a_device_or_fabric_with_its_source(
        capsys: pytest.CaptureFixture[str], name: str) -> None:
    assert main(["hw", "show", name, "--json"]) == 0
    entry = json.loads(capsys.readouterr().out)
    if name in list_presets():          # local-cpu is a preset and a device: the preset wins
        assert entry["name"] == name and "devices_per_node" in entry
        return
    raw = (DEVICE_DATA if entry["kind"] == "device" else FABRIC_DATA)[name]
    assert entry["name"] == name and set(entry["figures"]) == set(raw) - {"source"}
    assert all(fig["source"] for key, fig in entry["figures"].items() if key != "kind")
    assert main(["hw", "show", name]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"{name} (") and raw["source"] in text


@pytest.mark.parametrize("name", sorted(list_presets()))
def test_hw_show_summarises_every_preset(capsys: pytest.CaptureFixture[str], name: str) -> None:
    assert main(["hw", "show", name]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{name}: ") and "Traceback" not in out


GPUS = [n for n in list_devices() if get_device(n).kind == "gpu"]
FABRICS = list_fabrics()
#: Every device once, each with the next fabric in turn (every fabric at least once).
PAIRS = [(device, FABRICS[i % len(FABRICS)]) for i, device in enumerate(list_devices())]


def test_the_smoke_pairs_cover_every_device_and_fabric() -> None:
    assert {d for d, _ in PAIRS} == set(list_devices())
    assert {f for _, f in PAIRS} == set(FABRICS)


def cluster_file(tmp_path: Path, device: str, fabric: str) -> Path:
    """A user's two-node cluster file naming ``device`` and ``fabric`` (a 2-GPU PCIe box, or
    a CPU node with one rank)."""
    if get_device(device).kind == "gpu":
        node = f"{{topology: pcie8, device: {device}, options: {{devices: 2}}}}"
    else:
        node = f"{{topology: cpu, device: {device}}}"
    path = tmp_path / f"{device}-{fabric}.yaml"
    path.write_text(f"name: smoke-{device}\nnode: {node}\nnodes: 2\nfabric: {fabric}\n")
    return path


@pytest.mark.parametrize("device, fabric", PAIRS)
def test_a_cluster_naming_each_device_and_fabric_simulates(tmp_path: Path, device: str,
                                                           fabric: str) -> None:
    path = cluster_file(tmp_path, device, fabric)
    result = simulate(str(path), SMOKE_MODEL, SMOKE_BATCH, "sync", iterations=2)
    step = result.iteration_time_s
    # No step computes faster than the forward pass alone at the device's peak.
    bound = SMOKE_BATCH * load_workload(SMOKE_MODEL).fwd_flops_per_sample() / \
        get_device(device).peak_flops
    assert math.isfinite(step) and step >= bound
    assert result.specs["cluster"]["fabric"] == fabric
