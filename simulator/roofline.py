"""Roofline compute profiles: per-layer times estimated from a device model.

Kept apart from :mod:`vocab.profile` (what a profile *is*) because it needs the hardware
models: a profile is vocabulary, an estimate of one on a device is simulation.
"""

from __future__ import annotations

from hwmodels.specs import Device
from vocab.errors import SpecError
from vocab.profile import ComputeProfile, nonnegative_seconds
from vocab.workload import Workload

#: A GPU layer never takes less than launching its kernels (about 5 us with the framework).
GPU_LAUNCH_FLOOR_S = 5e-6
#: SGD with momentum streams weights, gradients and momentum: ~4 array passes per parameter.
UPDATE_ARRAY_PASSES = 4


def roofline_profile(workload: Workload, device: Device, batch: int, *,
                     launch_floor_s: float | None = None,
                     precision: str = "fp32") -> ComputeProfile:
    """A profile estimated from the device's peak FLOP/s, efficiency and memory bandwidth.

    Per layer and direction: ``max(flops / (peak * efficiency), bytes / mem_bandwidth)``, at
    least ``launch_floor_s`` (default 5 us on GPUs, 0 on CPUs). Forward bytes are the weights
    read plus the layer's input and output (twice its output's ``activation_bytes``) per
    sample; backward moves twice as much (weights, gradients, activations and their gradients).
    The update streams ``UPDATE_ARRAY_PASSES`` arrays of every parameter (SGD with momentum).
    ``precision`` picks the FLOP rate (:meth:`hwmodels.specs.Device.rate_flops`: tensor-core
    peaks for ``amp``, ``fp16``, ``bf16``); bytes per element come from the workload's layers.
    """
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise SpecError("batch", batch, "a whole number >= 1")
    floor = launch_floor_s if launch_floor_s is not None else (
        GPU_LAUNCH_FLOOR_S if device.kind == "gpu" else 0.0)
    nonnegative_seconds("launch_floor_s", floor)
    rate = device.rate_flops(precision)
    bw = device.mem_bandwidth_Bps
    forward, backward = [], []
    for layer in workload.layers:
        moved = layer.params * layer.dtype_bytes + 2.0 * layer.activation_bytes * batch
        forward.append(max(layer.fwd_flops * batch / rate, moved / bw, floor))
        backward.append(max(layer.bwd_flops * batch / rate, 2.0 * moved / bw, floor))
    update_bytes = sum(layer.params * layer.dtype_bytes for layer in workload.layers)
    update = max(UPDATE_ARRAY_PASSES * update_bytes / bw, floor)
    return ComputeProfile(
        device=device.name, model=workload.name, batch=batch, forward_s=tuple(forward),
        backward_s=tuple(backward), update_s=update,
        source=(f"roofline on {device.name}: efficiency {device.efficiency:g}, "
                f"launch floor {floor:g} s" + ("" if precision == "fp32" else
                                               f", {precision} at {rate:.4g} FLOP/s")),
        layer_names=tuple(layer.name for layer in workload.layers))
