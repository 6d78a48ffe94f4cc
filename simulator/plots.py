"""Plots of simulated (or executed) runs: timeline, time breakdown, scaling curves.

Every function draws on the Agg backend and returns the matplotlib Figure (never shows it).
"""

from __future__ import annotations

from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

OP_COLOURS = {"forward": "#4c72b0", "backward": "#55a868", "update": "#c44e52",
              "allreduce": "#dd8452", "wait": "#bbbbbb"}
#: The one palette of gradsync's figures (seaborn "deep", as OP_COLOURS), in order of use.
PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3",
           "#8c8c8c", "#ccb974", "#64b5cd")


def plot_timeline(trace: pd.DataFrame, ranks: Sequence[int] | None = None,
                  iterations: Sequence[int] | None = None, title: str = "") -> Figure:
    """One lane per (rank, stream); each interval a bar coloured by op."""
    frame = trace
    if ranks is not None:
        frame = frame[frame["rank"].isin(list(ranks))]
    elif frame["rank"].nunique() > 8:
        frame = frame[frame["rank"] < 8]
    if iterations is not None:
        frame = frame[frame["iteration"].isin(list(iterations))]
    lanes = sorted({(int(r), s) for r, s in zip(frame["rank"], frame["stream"])})
    fig, ax = plt.subplots(figsize=(11, 1 + 0.45 * max(len(lanes), 1)))
    for y, (rank, stream) in enumerate(lanes):
        lane = frame[(frame["rank"] == rank) & (frame["stream"] == stream)]
        for op, group in lane.groupby("op"):
            ax.broken_barh(list(zip(group["start_s"], group["end_s"] - group["start_s"])),
                           (y - 0.4, 0.8), facecolors=OP_COLOURS.get(op, "#8172b2"), label=op)
    ax.set_yticks(range(len(lanes)), [f"rank {r} {s}" for r, s in lanes])
    ax.set_xlabel("time (s)")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), loc="upper right", fontsize="small")
    ax.set_title(title or "timeline")
    fig.tight_layout()
    return fig


def plot_breakdown(table: pd.DataFrame, title: str = "") -> Figure:
    """Stacked bars per strategy (the index): compute, update, overlap interference, exposed
    communication."""
    fig, ax = plt.subplots(figsize=(7, 4))
    bottom = pd.Series(0.0, index=table.index)
    for column, colour in (("compute_s", "#55a868"), ("update_s", "#c44e52"),
                           ("interference_s", "#8172b3"), ("exposed_comm_s", "#dd8452")):
        ax.bar(table.index.astype(str), table[column], bottom=bottom, color=colour,
               label=column.removesuffix("_s").replace("_", " "))
        bottom = bottom + table[column]
    ax.set_ylabel("seconds per iteration")
    ax.legend()
    ax.set_title(title or "time per iteration by strategy")
    fig.tight_layout()
    return fig


def plot_scaling(table: pd.DataFrame, x: str = "ranks", y: str = "throughput_samples_s",
                 hue: str = "strategy", ideal: bool = True, title: str = "") -> Figure:
    """Scaling curves (e.g. a sweep's table): ``y`` against ``x``, one line per ``hue``."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, group in table.groupby(hue):
        group = group.sort_values(x)
        ax.plot(group[x], group[y], marker="o", label=str(key))
    if ideal and len(table):
        first = table.sort_values(x).groupby(hue).head(1)
        best = first.loc[first[y].idxmax()]
        xs = sorted(table[x].unique())
        ax.plot(xs, [best[y] * v / best[x] for v in xs], "k--", lw=0.8, label="linear")
    ax.set_xscale("log", base=2)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.legend(fontsize="small")
    ax.set_title(title or f"{y} vs {x}")
    fig.tight_layout()
    return fig
