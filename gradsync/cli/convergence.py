"""``gradsync convergence``: train every strategy for real and measure steps to a target."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from convergence.report import penalty_by_ranks, target_table
from convergence.study import DEFAULT_DATA, StudyError, StudyPlan, run_study, steps_to_target
from vocab.argtypes import ACCURACY, BATCH, EVERY, LR, MOMENTUM, STEPS, whole
from vocab.errors import SpecError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``convergence`` subcommand."""
    d = StudyPlan()
    p = subparsers.add_parser(
        "convergence", help="a convergence study: loss curves and steps to a target",
        description=("Train each model x strategy x staleness x ranks x seed with the executor "
                     "(under MPI), evaluate on held-out data every few steps, and write "
                     "curves.csv, steps.csv, penalty.csv (for gradsync tta --penalty) and "
                     "study.json into --out. Rerunning the same command resumes."))
    p.add_argument("--models", default=",".join(d.models), help="comma-separated zoo models")
    p.add_argument("--strategies", default=",".join(d.strategies))
    p.add_argument("--staleness", default=",".join(map(str, d.staleness)),
                   help="comma-separated d for delayed")
    p.add_argument("-n", "--ranks", default=",".join(map(str, d.ranks)),
                   help="comma-separated rank counts")
    p.add_argument("--seeds", type=whole(1, 1000, what="seeds"), default=d.seeds)
    p.add_argument("--batch", type=BATCH, default=d.batch, help="per-rank batch")
    p.add_argument("--steps", type=STEPS, default=d.steps)
    p.add_argument("--eval-every", type=whole(1, 10_000_000, what="steps between evaluations"), default=d.eval_every)
    p.add_argument("--lr", type=LR, default=d.lr, help="lr per --base-batch samples")
    p.add_argument("--momentum", type=MOMENTUM, default=d.momentum)
    p.add_argument("--base-batch", type=BATCH, default=d.base_batch)
    p.add_argument("--linear-scaling", action="store_true",
                   help="lr x global batch / base batch (Goyal et al. 2017)")
    p.add_argument("--warmup-steps", type=EVERY, default=d.warmup_steps,
                   help="ramp the lr linearly over the first K steps (0: none)")
    p.add_argument("--data", default=d.data,
                   help="auto (each model its own: " + ", ".join(
                       f"{m} {v}" for m, v in DEFAULT_DATA.items()) + ") or the executor's "
                        "--data for every model")
    p.add_argument("--target", type=ACCURACY, default=d.target, help="test accuracy to reach")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(func=run)


def _list(text: str, flag: str, kind=str) -> tuple:
    try:
        values = tuple(kind(x.strip()) for x in text.split(",") if x.strip())
    except ValueError:
        raise SpecError(flag, text, f"a comma-separated list of {kind.__name__}") from None
    if not values:
        raise SpecError(flag, text, "at least one value")
    return values


def run(args: argparse.Namespace) -> int:
    """Run (or resume) the study and print steps to the target."""
    plan = StudyPlan(_list(args.models, "--models"), _list(args.strategies, "--strategies"),
                     _list(args.staleness, "--staleness", int), _list(args.ranks, "-n", int),
                     args.seeds, args.batch, args.steps, args.eval_every, args.lr,
                     args.momentum, args.base_batch, args.linear_scaling, args.target,
                     args.data, args.warmup_steps)
    curves = run_study(plan, args.out, progress=args.progress)
    steps = steps_to_target(curves, plan.target)
    if not (steps["steps_to_target"] > 0).any():
        best = curves.loc[curves["test_accuracy"].idxmax()] if curves["test_accuracy"].notna().any() \
            else None
        seen = f"; the best was {best['test_accuracy']:.3f} ({best['model']} " \
               f"{best['strategy']} at step {best['step']})" if best is not None else ""
        raise StudyError(f"--target: no run reached test accuracy {plan.target} in "
                         f"{plan.steps} steps{seen}; lower --target or raise --steps (the "
                         f"tables are in {args.out})")
    table = target_table(curves, plan.target)
    print(f"steps to test accuracy {plan.target} (mean over {plan.seeds} seeds, 95 % bootstrap "
          f"interval; inf: some seed never got there)")
    print(pd.DataFrame({
        "model": table["model"], "strategy": table["label"], "ranks": table["ranks"],
        "global batch": table["global_batch"], "steps": table["steps"].round(1),
        "interval": [f"{lo:.0f}-{hi:.0f}" for lo, hi in zip(table["steps_lo"],
                                                            table["steps_hi"])],
        "samples": table["samples"].round(0),
        "reached": [f"{r}/{n}" for r, n in zip(table["reached"], table["seeds"])]})
        .to_string(index=False))
    penalty = penalty_by_ranks(curves, plan.target)
    if not penalty.empty:
        print("staleness penalty (steps / sync's):")
        print(penalty.round(3).to_string(index=False))
    print(f"tables in {args.out}: curves.csv, steps.csv, penalty.csv (-1: never reached "
          f"test accuracy {plan.target})")
    return 0
