"""Cells of 08_heterogeneous.ipynb."""

from notebooks._nbgen import code, md, parameters, setup

CELLS = [
    md("""
    # 08 · Heterogeneous clusters: one slow node, and placement on an oversubscribed fabric

    **Question.** Large clusters are rarely uniform. *If one node in 128 computes slower (a
    thermal throttle, a noisy neighbour), what does each strategy lose? And when the fabric is
    leaf switches with oversubscription above them, does the placement of the job's nodes on
    the leaves change which strategy wins: does `delayed` still win?*

    Both questions need every rank: the analytic fidelity simulates one representative rank and
    refuses a cluster whose nodes differ, naming the detailed fidelity. The detailed fidelity
    prices every link of every node (a collective's steps as vectorised link loads) and runs
    one process per *rank class* (ranks whose compute is the same), so a slow node costs one
    more process, not one per rank.
    """),
    parameters("08", '''
    NODES = 128            # DGX-1 V100 servers, 8 GPUs each
    SLOWDOWNS = [1.0, 1.1, 1.25, 1.5, 2.0]
    FABRIC_NODES = 64      # for the placement study
    '''),
    setup("08"),
    code('''
    STRATEGIES = ["sync", "layerwise", "bucketed", "delayed", "crossiter"]
    COLOURS = dict(gs.STRATEGY_COLOURS)   # the one palette: a strategy has one colour
    nodes = 16 if SMALL else NODES
    # delayed lets ranks drift apart by one step: a node s times slower uses up that slack in
    # about 1 / (s - 1) iterations, so the mean needs many iterations to show the steady state
    ITERATIONS = 40
    base = gs.load_cluster("dgx1-v100", nodes=nodes)
    rows = []
    for slow in SLOWDOWNS:
        cluster = base.with_variation(gs.Variation(slow_nodes={nodes // 2: slow})
                                      if slow > 1 else None)
        for strategy in STRATEGIES:
            res = gs.simulate(cluster, "resnet50", 64, strategy, iterations=ITERATIONS,
                              fidelity="detailed")
            rows.append({"slowdown": slow, "strategy": strategy,
                         "iteration_ms": 1e3 * res.iteration_time_s})
    slow_node = pd.DataFrame(rows)
    uniform = slow_node[slow_node.slowdown == 1.0].set_index("strategy").iteration_ms
    slow_node["lost_pct"] = 100 * (slow_node.iteration_ms
                                   / slow_node.strategy.map(uniform) - 1)
    slow_node.pivot_table(index="slowdown", columns="strategy", values="lost_pct")[STRATEGIES]
    '''),
    code('''
    try:   # the analytic fidelity refuses, naming the detailed one
        gs.simulate(base.with_variation(gs.Variation(slow_nodes={0: 1.5})), "resnet50", 64)
    except gs.SpecError as err:
        print(err)
    '''),
    code('''
    fig, ax = plt.subplots(figsize=(7.5, 4))
    for strategy, group in slow_node.groupby("strategy"):
        ax.plot(group.slowdown, group.lost_pct, "o-", color=COLOURS[strategy], label=strategy)
    ax.plot(SLOWDOWNS, [100 * (s - 1) for s in SLOWDOWNS], "k--", lw=0.8,
            label="compute slow-down itself")
    ax.set(xlabel=f"compute slow-down of one node in {nodes}",
           ylabel="iteration time lost (%)",
           title=f"ResNet-50 batch 64, {8 * nodes} V100s: one slow node")
    ax.legend(fontsize="small")
    save(fig, "slow_node")
    '''),
    md("""
    Every strategy here synchronises every step, so the slowest node sets the pace: the whole
    cluster loses about what the slow node loses in compute. `delayed` absorbs *noise* (a node
    slow one step and fast the next) because ranks may drift apart by its staleness, but a node
    that is *always* slow is a rate limit, not a delay; no strategy hides it.

    ## Placement on an oversubscribed fabric

    Leaf switches of 16 NIC ports (4 DGX-1 nodes of 4 NICs each), with oversubscription 1, 2
    and 4 between a leaf's ports and its uplinks. Three placements of the job's nodes: `packed`
    (leaves filled in node order: ring neighbours share a leaf), `spread` (nodes dealt
    round-robin over the leaves: every hop between nodes crosses the spine) and `rail-aligned`
    (NIC *j* of every node on the leaves of rail *j*). VGG-16 at batch 32 communicates enough
    for the fabric to matter.
    """),
    code('''
    fabric_nodes = 16 if SMALL else FABRIC_NODES
    leaves = gs.Variation(leaf_radix=16)
    rows = []
    for ratio in (1.0, 2.0, 4.0):
        cluster = gs.with_changes(gs.load_cluster("dgx1-v100", nodes=fabric_nodes),
                                  oversubscription=ratio).with_variation(leaves)
        for placement in gs.PLACEMENTS:
            times = {s: gs.simulate(cluster, "vgg16", 32, s, iterations=2, fidelity="detailed",
                                    placement=placement).iteration_time_s
                     for s in ("sync", "bucketed", "delayed")}
            for strategy, t in times.items():
                rows.append({"oversubscription": ratio, "placement": placement,
                             "strategy": strategy, "iteration_ms": 1e3 * t,
                             "speedup_vs_sync": times["sync"] / t})
    fabric = pd.DataFrame(rows)
    fabric.pivot_table(index=["oversubscription", "placement"], columns="strategy",
                       values="iteration_ms", sort=False)[["sync", "bucketed", "delayed"]]
    '''),
    code('''
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.8), sharey=True)
    for ax, (ratio, group) in zip(axes, fabric.groupby("oversubscription")):
        width = 0.27
        for i, strategy in enumerate(("sync", "bucketed", "delayed")):
            sub = group[group.strategy == strategy].set_index("placement").loc[list(gs.PLACEMENTS)]
            ax.bar(np.arange(3) + (i - 1) * width, sub.iteration_ms, width,
                   color=COLOURS[strategy], label=strategy)
        ax.set_xticks(range(3), gs.PLACEMENTS)
        ax.set_title(f"oversubscription {ratio:g}:1", fontsize=10)
    axes[0].set_ylabel("iteration time (ms)")
    axes[0].legend(fontsize="small")
    fig.suptitle(f"VGG-16 batch 32, {8 * fabric_nodes} V100s, leaves of 16 ports")
    fig.tight_layout()
    save(fig, "placement")
    '''),
    md("## Answer"),
    code('''
    worst = slow_node[slow_node.slowdown == max(SLOWDOWNS)].set_index("strategy").lost_pct
    mild = slow_node[slow_node.slowdown == min(SLOWDOWNS[1:])].set_index("strategy").lost_pct
    best = fabric.loc[fabric.groupby(["oversubscription", "placement"]).iteration_ms.idxmin()]
    delayed_wins = int((best.strategy == "delayed").sum())
    losses = best[best.strategy != "delayed"]
    where = "; ".join(f"{r.strategy} at {r.oversubscription:g}:1 {r.placement}"
                      for r in losses.itertuples()) or "none"
    high = fabric[fabric.oversubscription == fabric.oversubscription.max()]
    high_sync = high[high.strategy == "sync"].set_index("placement").iteration_ms
    display(Markdown(
        f"**Answer.** One node {max(SLOWDOWNS):g}x slower in {nodes} costs every strategy about "
        f"the same: from {worst.min():.0f} % ({worst.idxmin()}) to {worst.max():.0f} % "
        f"({worst.idxmax()}) of iteration time, close to the node's own "
        f"{100 * (max(SLOWDOWNS) - 1):.0f} % slow-down: a node that is always slow is a rate "
        f"limit that no overlap hides (`delayed` only postpones it: a {min(SLOWDOWNS[1:]):g}x "
        f"slow node costs it {mild['delayed']:.1f} % over {ITERATIONS} iterations against "
        f"{mild['sync']:.1f} % for `sync`, while its one step of slack lasts). On leaves of 16 ports, `delayed` is the fastest strategy "
        f"in {delayed_wins} of {len(best)} (oversubscription, placement) cases (beaten by: "
        f"{where}; where the fabric is the bottleneck, overlapping one step's communication "
        f"with the next step's compute cannot hide it all). At "
        f"{fabric.oversubscription.max():g}:1, placement moves `sync` from "
        f"{high_sync.min():.0f} ms ({high_sync.idxmin()}) to {high_sync.max():.0f} ms "
        f"({high_sync.idxmax()}): spreading ring neighbours over leaves sends every hop over "
        f"the oversubscribed uplinks, and rail-aligned leaves help only rings that stay on one "
        f"rail (these rings leave and enter a node on different NICs, so they cross rails)."))
    '''),
]
