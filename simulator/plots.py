"""Plots of simulated (or executed) runs: timeline, time breakdown, scaling, straggler cost.

Every function draws on the Agg backend and returns the matplotlib Figure (never shows it).
Colours come from :mod:`simulator.palette` only: a strategy has one colour in every figure.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from simulator.palette import (  # noqa: E402
    OP_COLOURS, OTHER, PART_COLOURS, model_colour, strategy_colour,
)

#: Series the scaling plot can colour, and where their colour comes from.
HUE_COLOURS = {"strategy": strategy_colour, "model": model_colour}


def plot_timeline(trace: pd.DataFrame, ranks: Sequence[int] | None = None,
                  iterations: Sequence[int] | None = None, title: str = "") -> Figure:
    """One lane per (rank, stream); each interval a bar coloured by op; the legend sits
    outside the lanes, so it never covers the last iteration."""
    frame = trace
    if ranks is not None:
        frame = frame[frame["rank"].isin(list(ranks))]
    elif frame["rank"].nunique() > 8:
        frame = frame[frame["rank"] < 8]
    if iterations is not None:
        frame = frame[frame["iteration"].isin(list(iterations))]
    lanes = sorted({(int(r), s) for r, s in zip(frame["rank"], frame["stream"])})
    fig, ax = plt.subplots(figsize=(11, 1.2 + 0.45 * max(len(lanes), 1)))
    for y, (rank, stream) in enumerate(lanes):
        lane = frame[(frame["rank"] == rank) & (frame["stream"] == stream)]
        for op, group in lane.groupby("op"):
            ax.broken_barh(list(zip(group["start_s"], group["end_s"] - group["start_s"])),
                           (y - 0.4, 0.8), facecolors=OP_COLOURS.get(op, OTHER), label=op)
    ax.set_yticks(range(len(lanes)), [f"rank {r} {s}" for r, s in lanes])
    ax.set_xlabel("time (s)")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), loc="upper left", bbox_to_anchor=(1.01, 1.0),
              fontsize="small", title="operation")
    ax.set_title(title or "what each rank's streams do over time")
    fig.tight_layout()
    return fig


def plot_breakdown(table: pd.DataFrame, title: str = "") -> Figure:
    """Stacked bars per strategy (the index): compute, update, overlap interference, exposed
    communication; each strategy's name is written in its colour."""
    fig, ax = plt.subplots(figsize=(7, 4))
    bottom = pd.Series(0.0, index=table.index)
    names = table.index.astype(str)
    for column in ("compute_s", "update_s", "interference_s", "exposed_comm_s"):
        part = column.removesuffix("_s").replace("_", " ")
        ax.bar(names, table[column] * 1e3, bottom=bottom * 1e3, color=PART_COLOURS[part],
               label=part)
        bottom = bottom + table[column]
    for label in ax.get_xticklabels():
        label.set_color(strategy_colour(label.get_text()))
    ax.set_ylabel("milliseconds per iteration")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    ax.set_title(title or "time per iteration by strategy")
    fig.tight_layout()
    return fig


def plot_scaling(table: pd.DataFrame, x: str = "ranks", y: str = "efficiency",
                 hue: str = "strategy", title: str = "") -> Figure:
    """Scaling of a sweep's table: ``y`` against ``x`` (log 2), one line per ``hue``.

    ``y="efficiency"`` (default) is the speedup over one device divided by the ranks, in %
    (100 % is linear scaling): lines that a log-log throughput plot would draw on top of each
    other come apart. ``y="speedup_vs_sync"`` shows the gain over ``sync``; any other column
    of the table is plotted as it is.
    """
    frame = table.copy()
    if y == "efficiency" and "efficiency" not in frame:
        frame["efficiency"] = 100 * frame["speedup_vs_single"] / frame["ranks"]
    colour = HUE_COLOURS.get(hue, lambda _: None)
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, group in frame.groupby(hue):
        group = group.sort_values(x)
        ax.plot(group[x], group[y], marker="o", label=str(key), color=colour(str(key)))
    if y == "efficiency":
        ax.axhline(100, color="k", lw=0.8, ls="--", label="linear scaling")
        ax.set_ylim(0, 105)
    elif y == "speedup_vs_sync":
        ax.axhline(1, color="k", lw=0.8, ls="--", label="sync (1.00x)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel(x)
    ax.set_ylabel({"efficiency": "scaling efficiency (%)",
                   "speedup_vs_sync": "speedup over sync (x)"}.get(y, y))
    ax.legend(fontsize="small", title=hue)
    ax.set_title(title or f"{y} vs {x}")
    fig.tight_layout()
    return fig


def plot_straggler_cost(cost: pd.DataFrame, x: str = "gpus", title: str = "") -> Figure:
    """Iteration time that noise adds, per strategy: ``cost`` has columns ``model``, ``x``,
    ``strategy`` and ``straggler_cost_pct``; one panel per model, one line per strategy."""
    models = list(dict.fromkeys(cost["model"]))
    fig, axes = plt.subplots(1, len(models), figsize=(4.5 * len(models), 3.8), squeeze=False,
                             sharey=True)
    for ax, model in zip(axes[0], models):
        sub = cost[cost["model"] == model]
        for strategy, group in sub.groupby("strategy", sort=False):
            group = group.sort_values(x)
            ax.plot(group[x], group["straggler_cost_pct"], marker="o", label=strategy,
                    color=strategy_colour(strategy))
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(sub[x].unique()), [str(v) for v in sorted(sub[x].unique())])
        ax.minorticks_off()
        ax.set(title=model, xlabel=x)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("iteration time added by noise (%)")
    axes[0][-1].legend(title="strategy", fontsize="small", loc="upper left",
                       bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(title or "What noise and stragglers add to each strategy's iteration")
    fig.tight_layout()
    return fig
