"""Cells of 06_memory.ipynb."""

from notebooks._nbgen import code, md, parameters, setup

CELLS = [
    md("""
    # 06 · Memory: what does each strategy cost per GPU, and what does staleness cost?

    **Question.** Every strategy keeps the parameters, their gradients and the optimizer state on
    each rank; they differ in the communication buffers they add. `delayed` with staleness *d*
    keeps *d* extra copies of the whole gradient in flight. *How many bytes per rank does each
    strategy need for a few zoo models, and what does raising the staleness from 1 to 4 buy in
    speed for what it costs in memory?*

    Memory per rank as gradsync counts it (SGD with momentum): parameters + gradients + one
    momentum copy + strategy buffers (`sync`: one flat fused buffer; `bucketed`: one buffer per
    bucket, the same bytes in total; `layerwise`: none, each layer is reduced in place;
    `delayed`: *d* gradient copies) + activations for the batch.
    """),
    parameters("06", '''
    MODELS = {"alexnet": 256, "googlenet": 32, "resnet50": 32, "bert-base": 32, "gpt2-small": 8}
    '''),
    setup("06"),
    code('''
    GiB = 2**30
    STRATEGIES = ["sync", "layerwise", "bucketed", "delayed"]
    models = MODELS if not SMALL else {k: MODELS[k] for k in ("alexnet", "resnet50", "bert-base")}
    rows = []
    for model, batch in models.items():
        for strategy in STRATEGIES:
            res = gs.simulate(cluster="dgx1-v100", model=model, batch=batch, strategy=strategy,
                              iterations=2)
            rows.append({"model": model, "batch": batch, "strategy": strategy,
                         **{k: v / GiB for k, v in res.memory.items()},
                         "total": res.memory_bytes_per_rank / GiB})
    memory = pd.DataFrame(rows)
    memory.pivot_table(index="model", columns="strategy", values="total", sort=False)[STRATEGIES]
    '''),
    code('''
    parts = ["params", "grads", "optimizer", "buffers", "activations"]
    colours = ["#4c72b0", "#55a868", "#8172b2", "#dd8452", "#bbbbbb"]
    v100_gib = gs.get_device("v100-sxm2").memory_bytes / GiB
    fig, axes = plt.subplots(1, len(models), figsize=(3 * len(models), 4.2), sharey=False)
    for ax, model in zip(axes, models):
        sub = memory[memory.model == model].set_index("strategy").loc[STRATEGIES]
        bottom = np.zeros(len(sub))
        for part, colour in zip(parts, colours):
            ax.bar(sub.index, sub[part], bottom=bottom, color=colour, label=part)
            bottom += sub[part].to_numpy()
        ax.axhline(v100_gib, color="r", lw=0.8, ls="--", label=f"V100 memory ({v100_gib:.0f} GiB)"
                   if model == list(models)[0] else None)
        ax.set_title(f"{model}, batch {models[model]}", fontsize=10)
        ax.tick_params(axis="x", rotation=45)
    axes[0].set_ylabel("memory per rank (GiB)")
    axes[0].legend(fontsize="x-small", loc="upper left")
    fig.suptitle("Memory per rank by component and strategy")
    fig.tight_layout()
    save(fig, "memory_by_strategy")
    '''),
    md("""
    Activations dominate for the convolutional models at their training batch sizes; the
    strategy's buffers matter most for the parameter-heavy models (AlexNet's fully connected
    layers, the transformers), where one extra gradient copy is a large fraction of what the
    model itself needs.

    ## What staleness buys, and what it costs

    `delayed` with staleness *d* lets *d* allreduces be in flight while compute goes on. In
    steady state one iteration then takes about max(compute, allreduce) whatever *d* is, because
    the network can move only one gradient's worth of bytes per allreduce time; a larger *d*
    only helps to ride out *variation*. Each extra step costs one gradient copy of memory, and the
    update uses a gradient *d* steps old, which slows convergence per step. We test it where it
    could matter: BERT-base on 16 DGX-1 V100 servers with compute made 8x faster (mixed-precision
    tensor cores) so communication is comparable to compute, with and without compute noise.
    """),
    code('''
    D = [1, 2, 3, 4]
    ITER = 40 if SMALL else 200
    bert = gs.load_workload("bert-base")
    cluster = gs.load_cluster("dgx1-v100", nodes=16)
    profile = gs.roofline_profile(bert, cluster.device, 32).scaled(1 / 8)
    NOISE = {"cv": 0.1, "straggler_prob": 0.01, "straggler_slowdown": 1.5}
    rows = []
    for noisy in (False, True):
        kw = dict(cluster=cluster, model=bert, batch=32, profile=profile, iterations=ITER,
                  seed=3, noise=NOISE if noisy else None)
        sync = gs.simulate(strategy="sync", **kw)
        for d in D:
            res = gs.simulate(strategy="delayed", staleness=d, **kw)
            rows.append({"noise": noisy, "staleness": d,
                         "iteration_ms": 1e3 * res.iteration_time_s,
                         "speedup_vs_sync": sync.iteration_time_s / res.iteration_time_s,
                         "memory_GiB": res.memory_bytes_per_rank / GiB,
                         "extra_vs_sync_GiB": (res.memory_bytes_per_rank
                                               - sync.memory_bytes_per_rank) / GiB})
    stale = pd.DataFrame(rows)
    stale
    '''),
    code('''
    fig, ax = plt.subplots(figsize=(7.5, 4))
    for noisy, group in stale.groupby("noise"):
        ax.plot(group.staleness, group.speedup_vs_sync, "o-",
                label="with compute noise and stragglers" if noisy else "no noise")
    ax.set(xlabel="staleness d (steps)", ylabel="delayed speedup over sync (x)",
           title="BERT-base, 128 V100s, compute x8 faster: speed vs staleness")
    ax.set_xticks(D)
    ax2 = ax.twinx()
    first = stale[~stale.noise]
    ax2.bar(first.staleness, first.extra_vs_sync_GiB, width=0.3, alpha=0.3, color="0.6",
            label="extra memory over sync (GiB)")
    ax2.set_ylabel("extra memory per rank over sync (GiB)")
    fig.legend(loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, fontsize="small",
               frameon=False)
    save(fig, "staleness")
    '''),
    md("## Answer"),
    code('''
    tot = memory.pivot_table(index="model", columns="strategy", values="total")
    grads = memory.groupby("model").grads.first()
    heavy = grads.idxmax()
    quiet, noisy = stale[~stale.noise].set_index("staleness"), stale[stale.noise].set_index("staleness")
    gain_pct = 100 * max((t.speedup_vs_sync / t.speedup_vs_sync[1] - 1).abs().max()
                         for t in (quiet, noisy))
    display(Markdown(
        f"**Answer.** Per rank, `layerwise` needs the least memory (no fused buffer), while "
        f"`sync`, `bucketed` and `delayed` with d = 1 each hold one gradient-sized buffer: for "
        f"{heavy} that is {tot.loc[heavy, 'layerwise']:.2f} GiB against "
        f"{tot.loc[heavy, 'sync']:.2f} GiB (sync) and {tot.loc[heavy, 'delayed']:.2f} GiB "
        f"(delayed, d = 1), a gradient copy being "
        f"{grads[heavy]:.2f} GiB. "
        f"For BERT-base each step of staleness beyond 1 adds another "
        f"{quiet.memory_GiB.diff().iloc[1]:.2f} GiB but buys almost no speed: for every d up to "
        f"{max(D)}, `delayed`'s speedup over `sync` stays within {gain_pct:.1f} % of its value "
        f"at d = 1 ({quiet.speedup_vs_sync[1]:.2f}x without noise, "
        f"{noisy.speedup_vs_sync[1]:.2f}x with noise). So d = 1 already buys the overlap, and "
        f"d = {max(D)} only adds {quiet.extra_vs_sync_GiB[max(D)]:.2f} GiB per rank and "
        f"gradients {max(D)} steps old."))
    '''),
]
