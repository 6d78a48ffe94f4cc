"""Compute profiles: roofline estimates against closed forms, scaling, files, validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vocab.errors import SpecError
from hwmodels.specs import Device
from vocab.profile import ComputeProfile, find_profile, list_profiles, load_profile, save_profile
from simulator.roofline import GPU_LAUNCH_FLOOR_S, UPDATE_ARRAY_PASSES, roofline_profile
from vocab.workload import Layer, Workload, load_workload

GPU = Device("test-gpu", "gpu", peak_flops=10e12, mem_bandwidth_Bps=500e9, memory_bytes=16e9,
             efficiency=0.5)
CPU = Device("test-cpu", "cpu", peak_flops=1e12, mem_bandwidth_Bps=100e9, memory_bytes=64e9,
             efficiency=0.25)

#: conv: compute-bound; fc: weight-bound; tiny: below the launch floor; attn: compute-only
WORKLOAD = Workload("toy", (
    Layer("conv", 1_000, fwd_flops=1e9, activation_bytes=1e4),
    Layer("fc", 10_000_000, fwd_flops=2e7, activation_bytes=4e3),
    Layer("tiny", 10, fwd_flops=100.0, activation_bytes=4.0),
    Layer("attn", 0, fwd_flops=5e8, param_tensors=0, activation_bytes=1e6),
))


def profile(fwd: tuple[float, ...] = (1.0, 2.0), bwd: tuple[float, ...] = (2.0, 4.0),
            update: float = 0.5, **kw) -> ComputeProfile:
    return ComputeProfile(device=kw.pop("device", "dev"), model=kw.pop("model", "toy"),
                          batch=kw.pop("batch", 8), forward_s=fwd, backward_s=bwd,
                          update_s=update, source="test", **kw)


# ----------------------------------------------------------------------------- roofline

def test_a_compute_bound_layer_takes_flops_over_effective_peak() -> None:
    prof = roofline_profile(WORKLOAD, GPU, batch=32)
    rate = GPU.peak_flops * GPU.efficiency
    assert prof.forward_s[0] == pytest.approx(32 * 1e9 / rate)
    assert prof.backward_s[0] == pytest.approx(32 * 2e9 / rate)
    assert prof.forward_s[3] == pytest.approx(32 * 5e8 / rate)


def test_a_weight_bound_layer_takes_bytes_over_bandwidth() -> None:
    prof = roofline_profile(WORKLOAD, GPU, batch=1)  # 4 us of FLOPs, 80 us of weights
    moved = 10_000_000 * 4 + 2 * 4e3 * 1
    assert prof.forward_s[1] == pytest.approx(moved / GPU.mem_bandwidth_Bps)
    assert prof.backward_s[1] == pytest.approx(2 * moved / GPU.mem_bandwidth_Bps)


def test_small_gpu_layers_cost_at_least_a_launch_but_cpu_layers_do_not() -> None:
    assert roofline_profile(WORKLOAD, GPU, 1).forward_s[2] == GPU_LAUNCH_FLOOR_S
    assert roofline_profile(WORKLOAD, CPU, 1).forward_s[2] == pytest.approx(
        max(100.0 / (CPU.peak_flops * CPU.efficiency), (40 + 8.0) / CPU.mem_bandwidth_Bps))
    assert roofline_profile(WORKLOAD, GPU, 1, launch_floor_s=0.0).forward_s[2] < 1e-9


def test_the_update_streams_four_arrays_of_every_parameter() -> None:
    prof = roofline_profile(WORKLOAD, CPU, 4)
    assert prof.update_s == pytest.approx(
        UPDATE_ARRAY_PASSES * 4 * WORKLOAD.total_params / CPU.mem_bandwidth_Bps)


def test_roofline_keys_and_names_follow_the_workload() -> None:
    workload = load_workload("alexnet")
    prof = roofline_profile(workload, GPU, 256)
    assert (prof.device, prof.model, prof.batch) == ("test-gpu", "alexnet", 256)
    assert prof.layer_names == tuple(layer.name for layer in workload.layers)
    prof.check_workload(workload)
    # AlexNet is compute-bound at batch 256: compute time ~ 3 x forward FLOPs / rate
    rate = GPU.peak_flops * GPU.efficiency
    assert prof.compute_s == pytest.approx(3 * 256 * workload.fwd_flops_per_sample() / rate,
                                           rel=0.05)


@given(st.floats(1e11, 1e14), st.floats(1e10, 1e12), st.integers(1, 512))
def test_a_faster_device_is_never_slower(peak: float, bw: float, batch: int) -> None:
    slow = Device("a", "gpu", peak, bw, 16e9, 0.5)
    fast = Device("b", "gpu", peak * 2, bw * 2, 16e9, 0.5)
    assert roofline_profile(WORKLOAD, fast, batch).iteration_s <= \
        roofline_profile(WORKLOAD, slow, batch).iteration_s
    assert roofline_profile(WORKLOAD, slow, batch).iteration_s <= \
        roofline_profile(WORKLOAD, slow, batch + 1).iteration_s


# ----------------------------------------------------------------------------- scaling

def test_totals() -> None:
    prof = profile()
    assert prof.compute_s == 9.0 and prof.iteration_s == 9.5
    assert prof.samples_per_s == pytest.approx(8 / 9.5)


def test_scaled_multiplies_every_time() -> None:
    prof = profile().scaled(2.0)
    assert prof.forward_s == (2.0, 4.0) and prof.backward_s == (4.0, 8.0)
    assert prof.update_s == 1.0 and "x2" in prof.source


@given(st.lists(st.floats(1e-6, 1.0), min_size=1, max_size=20), st.floats(1e-6, 1.0),
       st.floats(0.1, 1e5), st.integers(1, 1024))
def test_scaled_to_throughput_hits_the_throughput_and_keeps_the_shape(
        times: list[float], update: float, rate: float, batch: int) -> None:
    prof = profile(tuple(times), tuple(2 * t for t in times), update, batch=batch)
    scaled = prof.scaled_to_throughput(rate)
    assert scaled.iteration_s == pytest.approx(batch / rate, rel=1e-9)
    assert scaled.samples_per_s == pytest.approx(rate, rel=1e-9)
    factor = scaled.iteration_s / prof.iteration_s
    assert scaled.forward_s == pytest.approx([t * factor for t in times], rel=1e-9)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "fast"])
def test_scaling_needs_a_positive_number(bad: object) -> None:
    with pytest.raises(SpecError):
        profile().scaled_to_throughput(bad)  # type: ignore[arg-type]
    with pytest.raises(SpecError):
        profile().scaled(bad)  # type: ignore[arg-type]


def test_an_all_zero_profile_cannot_be_scaled_to_a_throughput() -> None:
    with pytest.raises(SpecError, match="iteration_s"):
        profile((0.0,), (0.0,), 0.0).scaled_to_throughput(100.0)


# ----------------------------------------------------------------------------- validation

@pytest.mark.parametrize("kwargs,field", [
    ({"fwd": (1.0,), "bwd": (1.0, 2.0)}, "backward_s"),
    ({"fwd": (), "bwd": ()}, "forward_s"),
    ({"fwd": (1.0, -2.0)}, "forward_s[1]"),
    ({"bwd": (1.0, float("nan"))}, "backward_s[1]"),
    ({"update": -1.0}, "update_s"),
    ({"batch": 0}, "batch"),
    ({"device": ""}, "device"),
    ({"layer_names": ("a",)}, "layer_names"),
    ({"fwd": "12"}, "forward_s"),
])
def test_a_bad_profile_names_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(SpecError) as err:
        profile(**kwargs)
    assert err.value.field == field


def test_a_profile_must_fit_its_workload() -> None:
    prof = profile(layer_names=("conv", "fc"))
    with pytest.raises(SpecError, match="4, the layers of workload toy"):
        prof.check_workload(WORKLOAD)
    two = Workload("two", (Layer("conv", 1), Layer("fc2", 1)))
    with pytest.raises(SpecError, match="'fc'"):
        prof.check_workload(two)
    profile().check_workload(two)  # no names: only the count is checked


# ----------------------------------------------------------------------------- files

@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".csv"])
def test_a_profile_survives_a_round_trip(tmp_path: Path, suffix: str) -> None:
    for prof in (roofline_profile(WORKLOAD, GPU, 16), profile()):
        path = save_profile(prof, tmp_path / f"p{len(prof.forward_s)}{suffix}")
        assert load_profile(path) == prof


def test_save_refuses_to_overwrite_and_unknown_suffixes(tmp_path: Path) -> None:
    path = save_profile(profile(), tmp_path / "p.csv")
    with pytest.raises(SpecError, match="overwrite"):
        save_profile(profile(), path)
    save_profile(profile(update=1.0), path, overwrite=True)
    assert load_profile(path).update_s == 1.0
    with pytest.raises(SpecError, match=r"\.csv"):
        save_profile(profile(), tmp_path / "p.json")


@pytest.mark.parametrize("text,field", [
    ("device: d\nmodel: m\nbatch: 1\nlayers: []\n", "update_s"),
    ("device: d\nmodel: m\nbatch: 1\nupdate_s: 0\nlayers: [{forward_s: 1}]\n",
     "layers[0].backward_s"),
    ("device: d\nmodel: m\nbatch: 1\nupdate_s: 0\nlayres: []\n", "profile key"),
    ("device: d\nmodel: m\nbatch: 2.5\nupdate_s: 0\nlayers: [{forward_s: 1, backward_s: 1}]\n",
     "batch"),
    ("", "profile"),
])
def test_a_bad_yaml_profile_names_the_file_and_field(tmp_path: Path, text: str,
                                                     field: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as err:
        load_profile(path)
    assert err.value.field == field and err.value.source == str(path)


def test_a_bad_csv_profile_names_the_row(tmp_path: Path) -> None:
    header = "device,model,batch,update_s,source,layer,forward_s,backward_s\n"
    path = tmp_path / "p.csv"
    path.write_text(header + "dev,toy,8,0.5,x,a,1.0,2.0\nother,toy,8,0.5,x,b,1.0,2.0\n")
    with pytest.raises(SpecError, match=r"p\.csv: rows\[1\]\.device"):
        load_profile(path)
    path.write_text(header + "dev,toy,8,0.5,x,a,1.0,slow\n")
    with pytest.raises(SpecError, match=r"rows\[0\]\.backward_s"):
        load_profile(path)
    path.write_text("device,model\ndev,toy\n")
    with pytest.raises(SpecError, match="columns"):
        load_profile(path)


def test_find_profile_looks_up_device_model_and_batch(tmp_path: Path) -> None:
    save_profile(profile(device="v100", model="alexnet", batch=256), tmp_path / "a.csv")
    save_profile(profile(device="v100", model="alexnet", batch=128), tmp_path / "b.yaml")
    assert len(list_profiles(tmp_path)) == 2
    assert find_profile("v100", "alexnet", 128, tmp_path).batch == 128
    assert find_profile("p100", "alexnet", 256, tmp_path) is None


def test_the_shipped_profiles_load() -> None:
    for prof in list_profiles():
        prof.check_workload(load_workload(prof.model))
    assert find_profile("no-such-device", "alexnet", 1) is None
