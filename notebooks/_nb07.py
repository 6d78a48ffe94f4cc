"""Cells of 07_speed_vs_accuracy.ipynb."""

from notebooks._nbgen import code, md, parameters, setup

CELLS = [
    md("""
    # 07 · Speed and accuracy together: where does `delayed`'s speed-up survive its penalty?

    **Question.** `delayed` is gradsync's fastest strategy wherever communication is exposed,
    and the one strategy that is not plain SGD: its update at step *t* uses the gradient of
    step *t - d*. *How many more steps does staleness cost, and on which clusters and
    interconnects is `delayed` still first to a target accuracy once that cost is paid?*

    Two halves, measured separately and multiplied:

    1. **Steps to the target** (the convergence half): a study trained for real with the
       executor, every strategy under MPI: `cnn-digits` (a small CNN on scikit-learn's 8x8
       digits), 2 and 4 ranks, 3 seeds, `sync` and `delayed` at d = 1, 2, 4. It is stored
       in `convergence/data/`, so this notebook reads it instead of retraining; the command
       that made it is below. `sync`, `layerwise`, `bucketed` and `crossiter` are the same
       SGD (the tests check their loss curves are equal step for step), so `sync`'s steps
       stand for all four.
    2. **Time per step** (the speed half): the simulator's iteration time of each strategy on
       each cluster (`gs.time_to_accuracy` combines the two, with both intervals).

    What carries over from the proxy task is the *shape* of the penalty (how it grows with
    *d* at a learning rate near the stability limit, and where it blows up); the exact numbers
    are the proxy's. For a decision on your own model, measure its penalty with
    `gradsync convergence` (or pass your runs as a CSV to `gradsync tta --penalty`).
    """),
    parameters("07", '''
    TARGET = 0.9                  # test accuracy the study's runs must reach
    STALENESS = [1, 2, 4]         # delayed's d (the stored study's)
    MODEL = "alexnet"             # the workload whose time to accuracy is predicted
    CLUSTERS = [("dgx1-v100", 1), ("dgx1-v100", 4), ("dgx1-p100", 4), ("pcie8-p100", None),
                ("cpu-10gbe", None)]   # (preset, nodes; None: the preset's)
    SYNC_STEPS = 10_000           # steps sync needs; ratios do not depend on it
    '''),
    setup("07"),
    md("""
    ## The measured half: curves over seeds

    The stored study was made with (17 minutes on two shared CPU cores):

    ```
    gradsync convergence --models cnn-digits --strategies sync,delayed --staleness 1,2,4 \\
        -n 2,4 --seeds 3 --batch 16 --steps 200 --eval-every 10 --lr 0.02 --target 0.9 \\
        --out study/
    ```

    Each line is the mean over three seeds; the band is their min-max.
    """),
    code('''
    if SMALL:
        STALENESS, CLUSTERS = STALENESS[:2], [CLUSTERS[0], CLUSTERS[3]]
    curves = gs.read_curves()
    curves = curves[(curves.strategy != "delayed") | curves.staleness.isin(STALENESS)]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    for col, ranks in enumerate(sorted(set(curves.ranks))[:2]):
        gs.plot_curves(curves, "test_accuracy", ranks=ranks, ax=axes[0, col])
        gs.plot_curves(curves, "train_loss", ranks=ranks, ax=axes[1, col])
        axes[0, col].axhline(TARGET, color="#8c8c8c", lw=0.8, ls=":")
    fig.tight_layout()
    save(fig, "curves")
    '''),
    code('''
    targets = gs.target_table(curves, TARGET)
    targets[["label", "ranks", "global_batch", "steps", "steps_lo", "steps_hi", "samples",
             "reached", "seeds"]]
    '''),
    md("""
    ## The staleness penalty

    Steps to the target of `delayed` at *d* over `sync`'s, at the same learning rate, per rank
    count, with a 95 % bootstrap interval over seeds. A cross at the top: some seed never
    reached the target (diverged or stalled), so that *d* has no finite penalty.
    """),
    code('''
    penalty = gs.penalty_by_ranks(curves, TARGET)
    fig = gs.plot_penalty(penalty)
    save(fig, "penalty")
    penalty
    '''),
    md("""
    ## The speed half, and the product

    For each cluster: the simulated iteration time of `sync`, `bucketed` and `delayed`, times
    the steps each needs (`sync`'s for the synchronous ones, `sync`'s times the measured
    penalty for `delayed`; the penalty measured nearest the cluster's global batch, in log
    scale). The speed-up of `delayed` is over the *best synchronous* strategy, per step
    (light bars) and to the target (dark bars).
    """),
    code('''
    measured = gs.penalty_table(curves, TARGET)
    rows = []
    for cluster, nodes in CLUSTERS:
        tta = gs.time_to_accuracy(cluster=cluster, model=MODEL,
                                  strategies=["sync", "bucketed", "delayed"],
                                  sync_steps=SYNC_STEPS, penalty=measured,
                                  staleness=STALENESS, nodes=nodes, iterations=4)
        f = tta.frame
        sync_like = f[f.strategy != "delayed"]
        best = sync_like.loc[sync_like.time_s.idxmin()]
        where = f"{cluster} x{nodes}" if nodes else cluster
        for _, r in f[f.strategy == "delayed"].iterrows():
            rows.append({"cluster": where, "d": int(r.staleness),
                         "global batch": tta.global_batch, "best sync": best.strategy,
                         "per step": best.iteration_time_s / r.iteration_time_s,
                         "to target": best.time_s / r.time_s,
                         "to target lo": best.time_s / r.time_hi_s,
                         "to target hi": best.time_s / r.time_lo_s})
    speed = pd.DataFrame(rows)
    speed
    '''),
    code('''
    from matplotlib.colors import to_rgba

    palette = gs.SERIES_COLOURS    # staleness values: the palette's colours for series
    where = list(dict.fromkeys(speed.cluster))
    width = 0.8 / len(STALENESS)
    fig, ax = plt.subplots(figsize=(10, 4.2))
    for i, d in enumerate(STALENESS):
        sub = speed[speed.d == d].set_index("cluster").loc[where]
        x = np.arange(len(where)) + (i - (len(STALENESS) - 1) / 2) * width
        colour = palette[i % len(palette)]
        ax.bar(x, sub["per step"], width, color=to_rgba(colour, 0.3))
        to_target = sub["to target"].where(np.isfinite(sub["to target"]), 0.0)
        ax.bar(x, to_target, width * 0.6, color=colour, label=f"d = {d}")
    ax.axhline(1.0, color="#8c8c8c", lw=0.8, ls="--")
    ax.set_xticks(np.arange(len(where)), where)
    ax.set_ylabel("speed-up over the best synchronous strategy (x)")
    ax.set_title(f"{MODEL}: delayed per step (light) and to the target (dark; 0: never gets there)",
                 fontsize=10)
    ax.legend(fontsize="x-small", ncol=len(STALENESS))
    save(fig, "speed_vs_accuracy")
    '''),
    md("## Answer"),
    code('''
    def cost(d):
        """The measured penalty at d in words, over the rank counts."""
        p = penalty[penalty.staleness == d].penalty
        if np.isfinite(p).all():
            return f"{p.min():.2f}-{p.max():.2f}x at d = {d}"
        return f"not reached by every seed at d = {d}"

    per_cluster = speed.loc[speed.groupby("cluster")["to target"].idxmax()]
    wins = per_cluster[per_cluster["to target"] > 1.0]
    verdict = "; ".join(
        f"{r.cluster}: {r['per step']:.2f}x per step, "
        + (f"{r['to target']:.2f}x to the target at d = {r.d}" if np.isfinite(r["to target"])
           and r["to target"] > 0 else "never first to the target")
        for _, r in per_cluster.iterrows())
    display(Markdown(
        f"**Answer.** On the proxy task (cnn-digits, {len(set(curves.seed))} seeds, "
        f"{' and '.join(map(str, sorted(set(curves.ranks))))} ranks, the same learning rate "
        f"as sync) staleness costs steps to {TARGET:.0%} test accuracy: "
        f"{'; '.join(cost(d) for d in STALENESS)}. Against the best synchronous strategy, "
        f"`delayed` on {MODEL} gives {verdict}. "
        f"Its speed-up survives its penalty on {len(wins)} of {len(per_cluster)} clusters"
        + (f" ({', '.join(wins.cluster)})" if len(wins) else "")
        + ": only where the step it hides is larger than the extra steps it costs, at the "
        "smallest staleness; wherever the interconnect already hides communication, or the "
        "penalty is larger than the per-step gain, a synchronous strategy is first."))
    '''),
]
