"""A 1,000-point sweep on two worker processes."""

from __future__ import annotations

import time

from simulator.sweep import expand_grid, run_sweep


def bench_sweep_1000() -> dict:
    grid = {"cluster": ["dgx1-v100", "dgx1-p100", "cpu-sandybridge-fdr", "cpu-broadwell-edr"],
            "nodes": [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
            "model": ["resnet50", "alexnet", "googlenet", "vgg16", "bert-base"],
            "strategy": ["sync", "layerwise", "bucketed", "delayed", "crossiter"]}
    points = expand_grid(grid)
    start = time.perf_counter()
    table = run_sweep(points, jobs=2, progress=False)
    wall = time.perf_counter() - start
    failed = int((table["error"] != "").sum())
    return {"name": f"sweep of {len(points)} points, 2 processes ({failed} failed)",
            "seconds": wall, "goal_s": 60.0}


BENCHMARKS = [bench_sweep_1000]
