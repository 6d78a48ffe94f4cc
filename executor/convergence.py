"""Convergence evidence: every strategy on the digits data, same epochs, test accuracy vs sync.

``python -m executor.convergence --out DIR [-n 2] [--epochs 10]`` trains ``mlp-digits`` with
each strategy under MPI (one run directory per strategy in ``DIR``), then writes
``DIR/convergence.csv`` (final test accuracy, difference from ``sync`` in percentage points)
and ``DIR/loss-<strategy>.png`` plus ``DIR/loss-curves.png``. Exit status 1 when a strategy
ends more than ``--tolerance-pp`` points from ``sync``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from executor import data as datamod  # noqa: E402
from executor.config import RunConfig, exec_strategy  # noqa: E402
from executor.launch import launch  # noqa: E402
from executor.outputs import METRICS_FILE  # noqa: E402
from vocab.argtypes import OneLineParser, real, whole

STRATEGIES = ("sync", "layerwise", "bucketed", "delayed", "crossiter", "ddp")


def run_all(out: Path, nprocs: int, epochs: int, batch: int, model: str, seed: int,
            lr: float) -> pd.DataFrame:
    """Train every strategy; returns one row per strategy with its final test accuracy."""
    arrays = datamod.load_arrays("digits", seed)
    per_epoch = datamod.steps_per_epoch(arrays, nprocs * batch)
    rows = []
    for strategy in STRATEGIES:
        cfg = RunConfig(nprocs=nprocs, model=model,
                        strategy=exec_strategy(strategy, bucket_mb=0.01, first_bucket_mb=0.005),
                        batch=batch, steps=epochs * per_epoch, out=str(out / strategy),
                        data="digits", seed=seed, lr=lr, momentum=0.9, eval_every=per_epoch,
                        trace=False, flush_every=50)
        rc = launch(cfg, timeout_s=600)
        metrics = pd.read_csv(out / strategy / METRICS_FILE) if rc == 0 else None
        acc = float(metrics["test_accuracy"].dropna().iloc[-1]) if metrics is not None \
            else float("nan")
        rows.append({"strategy": strategy, "epochs": epochs, "steps": cfg.steps,
                     "test_accuracy": acc, "exit_status": rc})
    table = pd.DataFrame(rows)
    sync = float(table.loc[table["strategy"] == "sync", "test_accuracy"].iloc[0])
    table["diff_vs_sync_pp"] = 100 * (table["test_accuracy"] - sync)
    return table


def plot_curves(out: Path, strategies: Sequence[str]) -> None:
    """A loss-curve PNG per strategy and one with all of them."""
    fig_all, ax_all = plt.subplots(figsize=(7, 4))
    for strategy in strategies:
        path = out / strategy / METRICS_FILE
        if not path.exists():
            continue
        m = pd.read_csv(path).dropna(subset=["loss"])
        smooth = m["loss"].rolling(10, min_periods=1).mean()
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(m["step"], m["loss"], alpha=0.3, label="per step")
        ax.plot(m["step"], smooth, label="10-step mean")
        ax.set(xlabel="step", ylabel="training loss", title=f"{strategy}: mlp-digits")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / f"loss-{strategy}.png", dpi=100)
        plt.close(fig)
        ax_all.plot(m["step"], smooth, label=strategy)
    ax_all.set(xlabel="step", ylabel="training loss (10-step mean)", yscale="log",
               title="mlp-digits, every strategy")
    ax_all.legend()
    fig_all.tight_layout()
    fig_all.savefig(out / "loss-curves.png", dpi=100)
    plt.close(fig_all)


def main(argv: Sequence[str] | None = None) -> int:
    """Run, tabulate, plot; 1 if a strategy is off sync by more than the tolerance."""
    parser = OneLineParser(prog="python -m executor.convergence",
                           description=__doc__)
    parser.add_argument("--out", required=True)
    parser.add_argument("-n", "--nprocs", type=whole(1, 64, what="ranks"), default=2)
    parser.add_argument("--epochs", type=whole(1, 10_000, what="epochs"), default=10)
    parser.add_argument("--batch", type=whole(1, 2**16, what="samples per rank"), default=32)
    parser.add_argument("--model", default="mlp-digits")
    parser.add_argument("--lr", type=real(0, 100, open_min=True, what="learning rate"),
                        default=0.02)
    parser.add_argument("--seed", type=whole(0, 2**32 - 1, what="seed"), default=0)
    parser.add_argument("--tolerance-pp", type=real(0, 100, what="percentage points"),
                        default=1.0)
    args = parser.parse_args(argv)
    out = Path(args.out)
    table = run_all(out, args.nprocs, args.epochs, args.batch, args.model, args.seed, args.lr)
    table.to_csv(out / "convergence.csv", index=False)
    plot_curves(out, STRATEGIES)
    print(table.to_string(index=False))
    bad = table[(table["diff_vs_sync_pp"].abs() > args.tolerance_pp) | table["exit_status"].ne(0)]
    return 1 if len(bad) else 0


if __name__ == "__main__":
    sys.exit(main())
