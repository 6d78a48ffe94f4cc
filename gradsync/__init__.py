"""gradsync: which way of synchronising gradients is fastest on my hardware?

This package is only the face of the project: the ``gradsync`` command and the public names,
re-exported from the parts below it. Names are resolved lazily, so ``import gradsync`` stays
cheap and a user who only simulates never imports torch, mpi4py or scipy::

    import gradsync as gs
    cmp = gs.compare(["sync", "layerwise", "bucketed", "delayed"],
                     cluster="dgx1-p100", model="alexnet", batch=256)
    cmp.table()
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> module that defines it
_PUBLIC = {
    # hardware
    "load_cluster": "hwmodels.cluster", "list_presets": "hwmodels.cluster",
    "save_cluster": "hwmodels.cluster", "cluster_to_dict": "hwmodels.cluster",
    "get_device": "hwmodels.devices", "list_devices": "hwmodels.devices",
    "get_fabric": "hwmodels.fabrics", "list_fabrics": "hwmodels.fabrics",
    "CommModel": "hwmodels.commmodel",
    "Cluster": "hwmodels.specs", "Device": "hwmodels.specs", "Fabric": "hwmodels.specs",
    "AlphaBeta": "hwmodels.specs",
    "Variation": "hwmodels.hetero", "NodeGroup": "hwmodels.hetero", "Degraded": "hwmodels.hetero",
    "PLACEMENTS": "hwmodels.hetero", "with_changes": "hwmodels.cluster",
    "Stack": "hwmodels.stacks", "load_stack": "hwmodels.stacks", "list_stacks": "hwmodels.stacks",
    "save_stack": "hwmodels.stacks",
    "GradsyncError": "vocab.errors", "SpecError": "vocab.errors",
    # workloads and profiles
    "load_workload": "vocab.workload", "list_workloads": "vocab.workload",
    "Workload": "vocab.workload", "Layer": "vocab.workload",
    "ComputeProfile": "vocab.profile", "roofline_profile": "simulator.roofline",
    "load_profile": "vocab.profile",
    # simulation
    "simulate": "simulator.api", "compare": "simulator.api",
    "SimResult": "simulator.results", "Comparison": "simulator.results",
    "StrategySpec": "vocab.strategies", "make_plan": "vocab.strategies",
    "STRATEGIES": "vocab.strategies",
    "expand_grid": "simulator.sweep", "run_sweep": "simulator.sweep",
    "plot_timeline": "simulator.plots", "plot_breakdown": "simulator.plots",
    "plot_scaling": "simulator.plots", "plot_straggler_cost": "simulator.plots",
    "strategy_colour": "simulator.palette", "model_colour": "simulator.palette",
    "strategy_colours": "simulator.palette", "STRATEGY_COLOURS": "simulator.palette",
    "MODEL_COLOURS": "simulator.palette", "SERIES_COLOURS": "simulator.palette",
    "read_trace": "vocab.trace", "to_chrome_trace": "vocab.trace",
    "read_run_record": "vocab.runrecord",
    # calibration (needs the calibration extra: scipy)
    "calibrate": "calibration.calibrate", "validate": "calibration.validate",
    "what_if": "calibration.whatif", "run_protocol": "calibration.protocol",
    "run_bench_net": "calibration.benchnet", "Hygiene": "calibration.protocol",
    # convergence and time to accuracy
    "time_to_accuracy": "convergence.tta", "PenaltyTable": "convergence.penalty",
    "nqm_penalty": "convergence.penalty",
    "read_curves": "convergence.report", "target_table": "convergence.report",
    "penalty_by_ranks": "convergence.report", "seed_band": "convergence.report",
    "penalty_table": "convergence.report",
    "plot_curves": "convergence.report", "plot_penalty": "convergence.report",
}

__all__ = sorted(_PUBLIC) + ["__version__"]


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use."""
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'gradsync' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
