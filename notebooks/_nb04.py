"""Cells of 04_transformers.ipynb."""

from notebooks._nbgen import code, md, parameters, setup

CELLS = [
    md("""
    # 04 · Transformers: what changes when the model is communication heavy?

    **Question.** BERT-base and GPT-2-small carry four to five times ResNet-50's gradient bytes.
    On DGX-1 V100 clusters (NVLink 2.0 inside, EDR InfiniBand between servers) and on a modern
    NVSwitch server (DGX A100, HDR InfiniBand between servers), *how much of the iteration is
    communication for these models, and how does that change which gradient strategy is worth
    using?*

    What makes a model communication heavy is not its size alone but **gradient bytes per unit of
    compute**: every iteration sends all gradients once, while compute grows with the batch and
    the sequence length. ResNet-50 is used as the convolutional reference.
    """),
    parameters("04", '''
    MODELS = {"resnet50": 32, "bert-base": 32, "gpt2-small": 8}
    '''),
    setup("04"),
    code('''
    rows = []
    for model, batch in MODELS.items():
        w = gs.load_workload(model)
        rows.append({"model": model, "batch_per_gpu": batch, "params_M": w.total_params / 1e6,
                     "grad_MB": w.total_grad_bytes / 1e6,
                     "tensors": w.param_tensors,
                     "GFLOP_per_iteration": w.fwd_flops_per_sample() * batch / 1e9,
                     "grad_bytes_per_kFLOP": 1e3 * w.total_grad_bytes
                     / (w.fwd_flops_per_sample() * batch)})
    models = pd.DataFrame(rows).set_index("model")
    models
    '''),
    md("""
    `grad_bytes_per_kFLOP` is the intensity that matters: bytes to move per thousand forward
    FLOPs of one iteration. Size alone misleads: BERT-base (128-token sequences) needs more
    bytes per FLOP than ResNet-50, but GPT-2-small's 1024-token sequences buy so much compute
    per sample that it needs fewer, despite the most parameters.
    Now simulate all four strategies on both cluster generations, from one server to many
    (1 and 16 servers at the notebook's small size, 1 to 32 at full size).
    """),
    code('''
    CLUSTERS = {"DGX-1 V100 + EDR": "dgx1-v100", "DGX A100 + HDR": "dgx-a100"}
    NODES = [1, 16] if SMALL else [1, 2, 4, 8, 16, 32]
    STRATEGIES = ["sync", "layerwise", "bucketed", "delayed"]
    rows, comparisons = [], {}
    for cname, preset in CLUSTERS.items():
        for nodes in NODES:
            cluster = gs.load_cluster(preset, nodes=nodes)
            comm = gs.CommModel(cluster)
            for model, batch in MODELS.items():
                nbytes = gs.load_workload(model).total_grad_bytes
                cmp = gs.compare(STRATEGIES, cluster=cluster, model=model, batch=batch)
                comparisons[(cname, nodes, model)] = cmp
                affine = comm.allreduce(nbytes)
                allreduce_s = affine.fixed_s + affine.per_byte_s * nbytes
                sync = cmp["sync"]
                for strategy, res in cmp.results.items():
                    rows.append({"cluster": cname, "nodes": nodes, "gpus": res.ranks,
                                 "model": model, "strategy": strategy,
                                 "compute_ms": 1e3 * (res.compute_s + res.update_s),
                                 "allreduce_ms": 1e3 * allreduce_s,
                                 "comm_share_sync": sync.exposed_comm_s
                                 / sync.iteration_time_s,
                                 "iteration_ms": 1e3 * res.iteration_time_s,
                                 "speedup_vs_sync": cmp.speedup_vs_sync[strategy],
                                 "efficiency": res.speedup_vs_single / res.ranks})
    runs = pd.DataFrame(rows)
    runs.pivot_table(index=["cluster", "gpus", "model"], columns="strategy",
                     values="speedup_vs_sync", sort=False)[STRATEGIES]
    '''),
    code('''
    share = runs[runs.strategy == "sync"].pivot_table(index=["cluster", "gpus"], columns="model",
                                                      values="comm_share_sync", sort=False)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, cname in zip(axes, CLUSTERS):
        sub = share.loc[cname][list(MODELS)]
        (100 * sub).plot.bar(ax=ax, rot=0)
        ax.set(title=cname, xlabel="GPUs", ylabel="exposed communication under sync (%)")
        ax.legend(title="model", fontsize="small")
    fig.suptitle("Share of a sync iteration spent waiting for communication")
    fig.tight_layout()
    save(fig, "comm_share")
    '''),
    code('''
    big = max(NODES)
    COLOURS = dict(gs.STRATEGY_COLOURS)   # the one palette: a strategy has one colour
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, cname in zip(axes, CLUSTERS):
        sub = runs[(runs.cluster == cname) & (runs.nodes == big)]
        gain = 100 * (sub.pivot_table(index="model", columns="strategy", values="speedup_vs_sync",
                                      sort=False)[STRATEGIES[1:]].loc[list(MODELS)] - 1)
        gain.plot.bar(ax=ax, rot=0, color=COLOURS)
        for bars in ax.containers:
            ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=1)
        ax.set(title=f"{cname}, {big} servers ({big * 8} GPUs)", xlabel="",
               ylabel="faster than sync: speedup - 1 (%)")
        ax.legend(title="strategy", fontsize="small")
    fig.suptitle("How much faster than sync each strategy runs at scale")
    fig.tight_layout()
    save(fig, "speedup_at_scale")
    '''),
    code('''
    cmp = comparisons[("DGX-1 V100 + EDR", big, "gpt2-small")]
    fig = cmp.plot_breakdown(title=f"GPT-2-small, batch 8/GPU, {big * 8} V100 GPUs over EDR: "
                                   "where the iteration goes")
    fig.axes[0].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    fig.tight_layout()
    save(fig, "gpt2_breakdown")
    '''),
    md("""
    ## When does a transformer become communication heavy?

    At fp32 on these GPUs the transformers still compute for much longer than they communicate.
    Mixed precision on tensor cores makes the same model compute several times faster while the
    gradient bytes stay put (many setups still allreduce fp32 gradients), which is exactly what
    makes a model communication heavy. Below, BERT-base on the largest DGX-1 V100 cluster above
    with its compute profile scaled down by 1x to 16x (`ComputeProfile.scaled`).
    """),
    code('''
    SPEEDUPS = [1, 4, 16] if SMALL else [1, 2, 4, 8, 16]
    bert = gs.load_workload("bert-base")
    v100 = gs.load_cluster("dgx1-v100", nodes=big)
    base_profile = gs.roofline_profile(bert, v100.device, MODELS["bert-base"])
    fast = []
    for k in SPEEDUPS:
        cmp = gs.compare(STRATEGIES, cluster=v100, model=bert, batch=MODELS["bert-base"],
                         profile=base_profile.scaled(1 / k))
        sync = cmp["sync"]
        fast.append({"compute_speedup": k, "compute_ms": 1e3 * (sync.compute_s + sync.update_s),
                     "comm_share_sync": sync.exposed_comm_s / sync.iteration_time_s,
                     **cmp.speedup_vs_sync})
    fast = pd.DataFrame(fast).set_index("compute_speedup")
    fig, ax = plt.subplots(figsize=(7, 4))
    for s in STRATEGIES[1:]:
        ax.plot(fast.index, fast[s], "o-", color=COLOURS[s], label=s)
    ax.set(xscale="log", xlabel="compute speed-up over fp32 roofline (x, log scale)",
           ylabel="speedup over sync (x)",
           title=f"BERT-base on {big * 8} V100s over EDR: faster compute, same gradient bytes")
    ax.set_xticks(SPEEDUPS, [str(k) for k in SPEEDUPS])
    ax.legend(title="strategy", fontsize="small")
    save(fig, "bert_faster_compute")
    fast
    '''),
    md("## Answer"),
    code('''
    def get(cname, model, strategy, col, nodes=big):
        r = runs[(runs.cluster == cname) & (runs.nodes == nodes) & (runs.model == model)
                 & (runs.strategy == strategy)]
        return float(r[col].iloc[0])
    v, a = list(CLUSTERS)
    heavy = models.grad_bytes_per_kFLOP.idxmax()
    best_v = runs[(runs.cluster == v) & (runs.nodes == big) & (runs.model == heavy)].set_index(
        "strategy").speedup_vs_sync.idxmax()
    display(Markdown(
        f"**Answer.** Per FLOP, {heavy} is the most communication-heavy model here "
        f"({models.grad_bytes_per_kFLOP[heavy]:.2f} gradient bytes per kFLOP against "
        f"{models.grad_bytes_per_kFLOP['resnet50']:.2f} for ResNet-50): under `sync` on "
        f"{big * 8} GPUs it spends {100 * get(v, heavy, 'sync', 'comm_share_sync'):.0f} % of "
        f"the iteration communicating on the {v} cluster and "
        f"{100 * get(a, heavy, 'sync', 'comm_share_sync'):.0f} % on {a}, against "
        f"{100 * get(v, 'resnet50', 'sync', 'comm_share_sync'):.0f} % and "
        f"{100 * get(a, 'resnet50', 'sync', 'comm_share_sync'):.0f} % for ResNet-50. "
        f"The heavier the communication the more overlap pays: `{best_v}` runs {heavy} "
        f"{get(v, heavy, best_v, 'speedup_vs_sync'):.2f}x as fast as `sync` on {v} "
        f"(layerwise {get(v, heavy, 'layerwise', 'speedup_vs_sync'):.2f}x, bucketed "
        f"{get(v, heavy, 'bucketed', 'speedup_vs_sync'):.2f}x), while on one NVSwitch server "
        f"every strategy is within "
        f"{100 * (runs[(runs.cluster == a) & (runs.nodes == 1)].speedup_vs_sync.max() - 1):.1f} % "
        f"of `sync`. Make BERT-base's compute {fast.index.max()}x faster (mixed precision) and "
        f"communication becomes {100 * fast.comm_share_sync.iloc[-1]:.0f} % of a sync iteration; "
        f"then `delayed` gains {fast.delayed.iloc[-1]:.2f}x and `bucketed` "
        f"{fast.bucketed.iloc[-1]:.2f}x over `sync`."))
    '''),
]
