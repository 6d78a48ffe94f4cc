"""One palette: each strategy has one colour in every figure, models never wear a strategy's.

The figure-producing functions are run on small tables and their artists read back: every line,
bar or tick label named after a strategy must carry that strategy's palette colour. The notebook
generators must take their strategy colours from the palette rather than define their own.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("matplotlib")
from matplotlib.colors import to_hex  # noqa: E402

from simulator import plots  # noqa: E402
from simulator.palette import MODEL_COLOURS, STRATEGY_COLOURS, strategy_colour  # noqa: E402
from vocab.strategies import STRATEGIES  # noqa: E402

NAMES = ["sync", "layerwise", "bucketed", "delayed", "crossiter"]
NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def sweep_table() -> pd.DataFrame:
    rows = [{"strategy": s, "ranks": r, "speedup_vs_single": r * (0.9 - 0.1 * i),
             "speedup_vs_sync": 1 + 0.1 * i, "model": m}
            for i, s in enumerate(NAMES) for r in (8, 16, 32) for m in ("alexnet",)]
    return pd.DataFrame(rows)


def breakdown_table() -> pd.DataFrame:
    return pd.DataFrame({"compute_s": 0.1, "update_s": 0.01, "interference_s": 0.005,
                         "exposed_comm_s": 0.02}, index=pd.Index(NAMES, name="strategy"))


def straggler_table() -> pd.DataFrame:
    return pd.DataFrame([{"model": m, "gpus": g, "strategy": s, "straggler_cost_pct": 5.0}
                         for m in ("resnet50", "bert-base") for g in (8, 64) for s in NAMES])


FIGURES = {
    "plot_scaling(efficiency)": lambda: plots.plot_scaling(sweep_table()),
    "plot_scaling(speedup_vs_sync)": lambda: plots.plot_scaling(sweep_table(),
                                                                y="speedup_vs_sync"),
    "plot_breakdown": lambda: plots.plot_breakdown(breakdown_table()),
    "plot_straggler_cost": lambda: plots.plot_straggler_cost(straggler_table()),
}


def strategy_colours_in(fig) -> dict[str, set[str]]:
    """Strategy name -> the colours of the artists labelled with it."""
    seen: dict[str, set[str]] = defaultdict(set)
    for ax in fig.axes:
        for line in ax.get_lines():
            if line.get_label() in STRATEGY_COLOURS:
                seen[line.get_label()].add(to_hex(line.get_color()))
        for patch in ax.patches:
            if patch.get_label() in STRATEGY_COLOURS:
                seen[patch.get_label()].add(to_hex(patch.get_facecolor()))
        for tick in ax.get_xticklabels():
            if tick.get_text() in STRATEGY_COLOURS:
                seen[tick.get_text()].add(to_hex(tick.get_color()))
    return seen


def test_every_strategy_has_a_colour_and_models_have_others():
    assert set(STRATEGIES) <= set(STRATEGY_COLOURS)
    strategy = {c.lower() for c in STRATEGY_COLOURS.values()}
    assert len(strategy) == len(STRATEGY_COLOURS)                 # no two strategies alike
    assert not strategy & {c.lower() for c in MODEL_COLOURS.values()}


def test_each_strategy_has_one_colour_across_every_figure():
    across: dict[str, set[str]] = defaultdict(set)
    for name, make in FIGURES.items():
        seen = strategy_colours_in(make())
        assert seen, f"{name} labels no strategy"
        for strategy, colours in seen.items():
            across[strategy] |= colours
    assert set(across) == set(NAMES)
    for strategy, colours in across.items():
        assert colours == {strategy_colour(strategy).lower()}, (strategy, colours)


@pytest.mark.parametrize("generator", sorted(NOTEBOOKS.glob("_nb0*.py")), ids=lambda p: p.stem)
def test_notebooks_take_strategy_colours_from_the_palette(generator):
    source = generator.read_text()
    # A colour map of strategies written in the notebook, or matplotlib's cycle colours
    # ("C1"), would give a strategy another colour than the palette's.
    own_map = re.search(r'\{\s*"(?:sync|layerwise|bucketed|delayed)"\s*:\s*"(?:C\d|#)', source)
    assert own_map is None, own_map
    assert not re.search(r'color\s*=\s*f?"C\{?\w*\}?"', source)
