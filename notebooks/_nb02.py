"""Cells of 02_interconnects.ipynb."""

from notebooks._nbgen import code, md, parameters, setup

CELLS = [
    md("""
    # 02 · Interconnects: which strategy wins on which wire, and where does `delayed` stop helping?

    **Question.** Take one model (ResNet-50, 32 images per GPU) on the same eight P100 GPUs and
    change only what connects them: NVLink inside a DGX-1, PCIe inside an 8-GPU server, or eight
    one-GPU servers over InfiniBand (FDR, EDR, HDR) or Ethernet (10, 25, 100 GbE). *How much does
    each strategy gain over `sync` on each interconnect, and at what compute-to-communication
    ratio does delaying the update by one step help most?*

    A reminder of the arithmetic. Let *T* be the compute time of one iteration and *C* the time
    of one allreduce of all gradients. `sync` takes about *T + C*; `delayed` about
    *max(T, C)*, since each iteration's allreduce runs during the next iteration's compute.
    Its gain (*T + C*) / max(*T*, *C*) is largest, 2x, when *T = C*, and falls towards 1 both when
    communication is negligible (*C* << *T*) and when it dominates (*C* >> *T*, nothing left to
    hide it behind). `layerwise` and `bucketed` can only hide communication behind the backward
    pass, and only the part of it after each gradient is ready.
    """),
    parameters("02", '''
    MODEL, BATCH = "resnet50", 32
    '''),
    setup("02"),
    md("""
    ## Eight GPUs, eight wires

    NVLink and PCIe are the `dgx1-p100` and `pcie8-p100` presets. For the networks we write our
    own cluster file in gradsync's format, one P100 per server, eight servers, and swap the
    fabric with `Cluster.with_fabric`.
    """),
    code('''
    import tempfile

    one_gpu_file = Path(tempfile.mkdtemp()) / "p100-one-per-node.yaml"
    one_gpu_file.write_text("""\\
    name: p100-one-per-node
    source: "notebook 02: eight one-GPU servers, one NIC each, on a non-blocking fat tree"
    node:
      topology: pcie8
      device: p100-sxm2
      options: {devices: 1, devices_per_switch: 1}
    nodes: 8
    nics: 1
    fabric: ib-edr
    collective_overhead: 15 us
    """)
    one_gpu = gs.load_cluster(one_gpu_file)
    WIRES = {"NVLink (DGX-1)": gs.load_cluster("dgx1-p100"),
             "PCIe 3.0 (8-GPU server)": gs.load_cluster("pcie8-p100")}
    for label, fabric in [("IB HDR", "ib-hdr"), ("IB EDR", "ib-edr"), ("IB FDR", "ib-fdr"),
                          ("100 GbE", "eth-100g"), ("25 GbE", "eth-25g"), ("10 GbE", "eth-10g")]:
        WIRES[label] = one_gpu.with_fabric(gs.get_fabric(fabric))
    STRATEGIES = ["sync", "layerwise", "bucketed", "delayed"]
    workload = gs.load_workload(MODEL)

    rows = []
    for wire, cluster in WIRES.items():
        cmp = gs.compare(STRATEGIES, cluster=cluster, model=MODEL, batch=BATCH)
        comm = gs.CommModel(cluster).allreduce(workload.total_grad_bytes)
        allreduce_s = comm.fixed_s + comm.per_byte_s * workload.total_grad_bytes
        for strategy, res in cmp.results.items():
            rows.append({"wire": wire, "strategy": strategy,
                         "iteration_ms": 1e3 * res.iteration_time_s,
                         "speedup_vs_sync": cmp.speedup_vs_sync[strategy],
                         "compute_to_comm": (res.compute_s + res.update_s) / allreduce_s})
    wires = pd.DataFrame(rows)
    ratio = wires.groupby("wire", sort=False).compute_to_comm.first()
    table = wires.pivot_table(index="wire", columns="strategy", values="speedup_vs_sync",
                              sort=False)[STRATEGIES]
    table.insert(0, "compute/comm", ratio)
    table
    '''),
    code('''
    COLOURS = dict(gs.STRATEGY_COLOURS)   # the one palette: a strategy has one colour
    fig, ax = plt.subplots(figsize=(11, 4.5))
    table[STRATEGIES[1:]].plot.bar(ax=ax, rot=0, width=0.8, color=COLOURS)
    ax.axhline(1, color="k", lw=0.8, ls="--", label="sync (1.00x)")
    ax.set_xticks(range(len(table)), [w.replace(' (', '\\n(') + f'\\nT/C = {r:.2g}'
                                      for w, r in ratio.items()], fontsize=8)
    ax.set(ylabel="speedup over sync (x)", xlabel="interconnect, and its compute-to-communication "
           "ratio T/C", title=f"{MODEL}, batch {BATCH}/GPU, 8 P100 GPUs: speedup of each "
           "strategy by interconnect")
    ax.legend(title="strategy", fontsize="small", loc="upper left")
    save(fig, "speedup_by_wire")
    '''),
    md("""
    Each bar group is labelled with its compute-to-communication ratio *T/C*. On the fast wires
    *T/C* is large and there is little worth hiding; on the slowest, communication takes as long
    as compute, which is where hiding it behind the next iteration pays most.

    ## Where `delayed` stops helping: a bandwidth sweep

    To see the whole curve, keep the eight one-GPU servers and sweep the network bandwidth
    continuously (a made-up fabric with Ethernet-like 10 us latency), then plot each strategy's
    gain over `sync` against *T/C*.
    """),
    code('''
    N_BW = 9 if SMALL else 25
    bandwidths = np.logspace(np.log10(0.05e9), np.log10(50e9), N_BW)
    sweep = []
    for bw in bandwidths:
        cluster = one_gpu.with_fabric(gs.Fabric("sweep", "ethernet", float(bw), 10e-6))
        cmp = gs.compare(STRATEGIES, cluster=cluster, model=MODEL, batch=BATCH)
        comm = gs.CommModel(cluster).allreduce(workload.total_grad_bytes)
        allreduce_s = comm.fixed_s + comm.per_byte_s * workload.total_grad_bytes
        sync = cmp["sync"]
        sweep.append({"bandwidth_GBps": bw / 1e9,
                      "compute_to_comm": (sync.compute_s + sync.update_s) / allreduce_s,
                      **{s: cmp.speedup_vs_sync[s] for s in STRATEGIES}})
    sweep = pd.DataFrame(sweep)
    sweep["delayed_vs_best_overlap"] = sweep.delayed / sweep[["layerwise", "bucketed"]].max(axis=1)
    peak = sweep.loc[sweep.delayed.idxmax()]
    peak_vs_overlap = sweep.loc[sweep.delayed_vs_best_overlap.idxmax()]
    sweep
    '''),
    code('''
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for s in STRATEGIES[1:]:
        ax.plot(sweep.compute_to_comm, sweep[s], "o-", ms=4, color=COLOURS[s],
                label=f"{s} over sync")
    ax.plot(sweep.compute_to_comm, sweep.delayed_vs_best_overlap, "k--",
            label="delayed over the best of layerwise/bucketed")
    r = np.logspace(np.log10(sweep.compute_to_comm.min()), np.log10(sweep.compute_to_comm.max()))
    ax.plot(r, (r + 1) / np.maximum(r, 1), color="grey", lw=0.8,
            label="ideal delayed: (T+C)/max(T,C)")
    ax.axvline(peak.compute_to_comm, color=COLOURS["delayed"], ls=":", lw=1,
               label=f"delayed's peak in the sweep (T/C = {peak.compute_to_comm:.2f})")
    ax.scatter(ratio, table.delayed, marker="x", color="k", zorder=3,
               label="delayed on the named wires above")
    ax.set(xscale="log", xlabel="compute-to-communication ratio T/C (log scale)",
           ylabel="speedup (x)",
           title=f"{MODEL}, 8 one-GPU servers, network bandwidth swept "
                 f"{bandwidths[0] / 1e9:g}-{bandwidths[-1] / 1e9:g} GB/s")
    ax.legend(fontsize="small")
    save(fig, "gain_vs_ratio")
    '''),
    md("## Answer"),
    code('''
    fastest, slowest = ratio.idxmax(), ratio.idxmin()
    overlap = table[["layerwise", "bucketed"]].max(axis=1)
    lead = table.delayed / overlap - 1
    display(Markdown(
        f"**Answer.** For {MODEL} on 8 P100s, `delayed` gains "
        f"{table.loc[fastest, 'delayed']:.2f}x over `sync` on {fastest}, where T/C = "
        f"{ratio[fastest]:.1f}, and {table.loc[slowest, 'delayed']:.2f}x on {slowest}, where "
        f"T/C = {ratio[slowest]:.2f}; layer-wise or bucketed overlap comes within "
        f"{100 * lead.drop(slowest).abs().max():.1f} % of it on every other wire, but on "
        f"{slowest} reaches only {overlap[slowest]:.2f}x. "
        f"In the bandwidth sweep its gain over `sync` peaks at {peak.delayed:.2f}x where "
        f"T/C = {peak.compute_to_comm:.2f} ({peak.bandwidth_GBps:.2g} GB/s), and its edge over "
        f"the best of layerwise/bucketed peaks at {peak_vs_overlap.delayed_vs_best_overlap:.2f}x "
        f"at T/C = {peak_vs_overlap.compute_to_comm:.2f}. "
        f"Below that ratio the network is the bottleneck and every strategy's gain shrinks "
        f"towards 1x (at T/C = {sweep.compute_to_comm.min():.2f}: "
        f"{sweep.delayed.iloc[0]:.2f}x); above it the communication to hide becomes small "
        f"(at T/C = {sweep.compute_to_comm.max():.0f}: {sweep.delayed.iloc[-1]:.2f}x)."))
    '''),
]
