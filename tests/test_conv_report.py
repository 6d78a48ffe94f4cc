"""The study's results: bands over seeds, steps- and samples-to-target with intervals, the
penalty against d and ranks; diverged or never-reaching runs count as 'did not reach'."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from convergence.report import (
    STUDY_CSV, penalty_by_ranks, plot_curves, plot_penalty, read_curves, run_targets,
    seed_band, target_table,
)
from vocab.errors import SpecError

STEPS = np.arange(10, 110, 10)


def run(strategy: str, d: int, ranks: int, seed: int, reach_at: float,
        test_loss: float = 0.5) -> pd.DataFrame:
    """A run whose accuracy ramps linearly to 1 and crosses 0.9 at step ``reach_at``."""
    acc = np.clip(0.9 * STEPS / reach_at, 0, 1) if math.isfinite(reach_at) \
        else np.full(len(STEPS), 0.5)
    return pd.DataFrame({"model": "m", "strategy": strategy, "staleness": d, "ranks": ranks,
                         "global_batch": 16 * ranks, "seed": seed, "step": STEPS,
                         "samples_seen": STEPS * 16 * ranks, "test_accuracy": acc,
                         "test_loss": test_loss, "train_loss": 1 - acc})


def study(rows) -> pd.DataFrame:
    return pd.concat([run(*r) for r in rows], ignore_index=True)


def test_steps_to_target_is_the_first_evaluation_at_or_past_the_target() -> None:
    runs = run_targets(study([("sync", 0, 2, 0, 30), ("sync", 0, 2, 1, 45),
                              ("delayed", 2, 2, 0, math.inf)]), 0.9)
    assert list(runs["steps_to_target"]) == [30, 50, math.inf]
    assert list(runs["samples_to_target"][:2]) == [30 * 32, 50 * 32]


def test_a_diverged_run_did_not_reach_the_target_even_if_its_accuracy_looks_high() -> None:
    curves = run("delayed", 8, 2, 0, 30)
    curves.loc[curves["step"] >= 20, "test_loss"] = math.nan   # diverged at step 20
    curves.loc[curves["step"] >= 20, "test_accuracy"] = 1.0
    runs = run_targets(curves, 0.9)
    assert runs["steps_to_target"].iloc[0] == math.inf and runs["diverged"].iloc[0]


def test_target_table_means_over_seeds_with_an_interval_inside_their_range() -> None:
    table = target_table(study([("sync", 0, 2, s, t) for s, t in enumerate((20, 30, 40))]
                               + [("delayed", 2, 2, 0, 30), ("delayed", 2, 2, 1, math.inf)]),
                         0.9)
    sync = table[table["strategy"] == "sync"].iloc[0]
    assert sync["steps"] == 30 and 20 <= sync["steps_lo"] <= 30 <= sync["steps_hi"] <= 40
    assert sync["samples"] == 30 * 32 and sync["reached"] == 3
    delayed = table[table["strategy"] == "delayed"].iloc[0]
    assert delayed["steps"] == math.inf and (delayed["reached"], delayed["seeds"]) == (1, 2)


def test_penalty_is_delayeds_steps_over_syncs_per_rank_count() -> None:
    rows = [("sync", 0, r, s, 20 + 10 * s) for r in (2, 4) for s in range(3)]
    rows += [("delayed", 2, 2, s, 2 * (20 + 10 * s)) for s in range(3)]
    rows += [("delayed", 2, 4, s, math.inf if s == 0 else 30) for s in range(3)]
    pen = penalty_by_ranks(study(rows), 0.9)
    two = pen[pen["ranks"] == 2].iloc[0]
    assert two["penalty"] == pytest.approx(2.0) and two["lo"] <= 2.0 <= two["hi"]
    assert pen[pen["ranks"] == 4]["penalty"].iloc[0] == math.inf


def test_band_is_mean_min_and_max_over_seeds_per_step() -> None:
    curves = study([("sync", 0, 2, s, t) for s, t in enumerate((20, 40, 80))])
    band = seed_band(curves)
    at = band[band["step"] == 10].iloc[0]
    values = [0.9 * 10 / t for t in (20, 40, 80)]
    assert at["mean"] == pytest.approx(np.mean(values))
    assert (at["lo"], at["hi"]) == pytest.approx((min(values), max(values)))
    with pytest.raises(SpecError, match="metric"):
        seed_band(curves, "accuracy")


def test_plots_draw_one_line_per_strategy_and_one_per_rank_count() -> None:
    rows = [("sync", 0, r, s, 30) for r in (2, 4) for s in range(2)]
    rows += [("delayed", d, r, s, 30 + 10 * d) for d in (1, 2) for r in (2, 4) for s in range(2)]
    curves = study(rows)
    assert len(plot_curves(curves, ranks=2).axes[0].lines) == 3
    assert len(plot_penalty(penalty_by_ranks(curves, 0.9)).axes[0].lines) >= 2


def test_the_stored_study_reads_and_its_sync_runs_reach_the_target() -> None:
    curves = read_curves(STUDY_CSV)
    table = target_table(curves, 0.9)
    assert (table[table["strategy"] == "sync"]["reached"] > 0).all()
    with pytest.raises(SpecError, match="curves"):
        read_curves(STUDY_CSV.with_name("missing.csv"))
