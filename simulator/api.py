"""The simulator's Python API: :func:`simulate` one strategy, :func:`compare` several.

Inputs may be names (presets, zoo models), file paths or objects. Everything shared by the
strategies of one comparison (cluster, workload, profile, cost model) is resolved once, in a
:class:`Context`; a strategy run then only plans, simulates and summarises.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hwmodels.cluster import check_progress, load_cluster, with_changes
from hwmodels.commmodel import CommModel
from vocab.errors import SpecError, UnknownNameError
from hwmodels.calibration import Compute
from hwmodels.specs import GRAD_BYTES_PER_ELEMENT, PRECISIONS, Cluster
from hwmodels.stacks import Stack, overlap_interference, resolve_stack, stack_record
from simulator.costmodel import CostModel, LayerTimes, missing_members
from simulator.detailed import DetailedNetwork, detailed_estimate
from simulator.heterogeneity import node_factors, variation_record, variation_summary
from simulator.engine import AnalyticNetwork, EngineSetup, run_engine
from simulator.memory import memory_breakdown
from simulator.noise import NoiseSpec, pacing_factors, rank_factors, spread_factors
from vocab.profile import ComputeProfile, load_profile
from vocab.runrecord import make_run_id
from simulator.roofline import roofline_profile
# Re-exported: run settings are part of this API (callers import them from here).
from simulator.settings import (
    DEFAULT_ITERATIONS as DEFAULT_ITERATIONS,
    FIDELITIES as FIDELITIES,
    NOISY_ITERATIONS as NOISY_ITERATIONS,
    RunSettings as RunSettings,
    default_ordering as default_ordering,
    settings_for as settings_for,
    speed_spread as speed_spread,
)
from simulator.results import Comparison, SimResult
from simulator.trust import trust_for
from vocab.strategies import STRATEGIES, Plan, StrategySpec, make_plan, plan_cycle_fused
from vocab.timing import warmup_iterations
from vocab.workload import Workload, load_workload

#: The detailed fidelity's default bound on ranks (``max_ranks`` / ``--max-ranks`` raise it);
#: runs expected to take long print their time and memory estimate first.
MAX_DETAILED_RANKS = 16_384
ESTIMATE_NOTICE_S = 10.0


@dataclass
class Context:
    """Resolved inputs shared by every strategy of a comparison."""

    cluster: Cluster
    workload: Workload
    batch: int
    profile: LayerTimes              # a ComputeProfile, or anything with its layer times
    comm_model: CostModel            # a CommModel, or anything that prices collectives alike
    #: The calibrated compute the profile came from (its noise, whether it was extrapolated).
    compute: Compute | None = None
    #: The software stack (library and framework costs); None: the collective library alone.
    stack: Stack | None = None
    #: Training precision asked for (None: the workload's own element bytes, fp32 rates).
    precision: str | None = None
    _calls: dict[tuple[int, int, int], float] = field(default_factory=dict, repr=False)
    _costs: dict[int, tuple[float, float]] = field(default_factory=dict, repr=False)
    _phases: dict[int, tuple] = field(default_factory=dict, repr=False)
    _steps: dict[int, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        # Loud at once, not an AttributeError deep inside a simulation.
        for name, protocol in (("profile", LayerTimes), ("comm_model", CostModel)):
            missing = missing_members(getattr(self, name), protocol)
            if missing:
                raise SpecError(name, type(getattr(self, name)).__name__,
                                f"a {protocol.__name__} (it lacks {', '.join(missing)})")

    def cost(self, nbytes: int) -> tuple[float, float]:
        """(fixed_s, per_byte_s) of an allreduce of ``nbytes`` over all ranks (cached)."""
        if nbytes not in self._costs:
            affine = self.comm_model.allreduce(nbytes)
            self._costs[nbytes] = (float(affine.fixed_s), float(affine.per_byte_s))
        return self._costs[nbytes]

    @property
    def interference(self) -> tuple[float, str]:
        """The run's overlap interference factor f and where it came from."""
        return overlap_interference(self.cluster, self.stack)

    @property
    def wire_grad_bytes(self) -> list[int]:
        """Gradient bytes per layer as the collectives carry them: the stack's compression
        casts wider gradients to 2-byte elements on the wire (memory keeps their width)."""
        if self.stack is None:
            return self.workload.grad_bytes
        return [layer.grad_bytes * self.stack.wire_element_bytes(layer.dtype_bytes)
                // layer.dtype_bytes for layer in self.workload.layers]

    def call_s(self, message: Any) -> float:
        """Seconds the stack adds to ``message``'s collective (0 without a stack; cached)."""
        if self.stack is None:
            return 0.0
        layers = [self.workload.layers[i] for i in message.layers]
        tensors = sum(layer.param_tensors for layer in layers)
        element_bytes = max((layer.dtype_bytes for layer in layers), default=4)
        key = (int(message.nbytes), tensors, element_bytes)
        if key not in self._calls:
            self._calls[key] = self.stack.call_s(
                message.nbytes, tensors, self.cluster.device.mem_bandwidth_Bps,
                lambda nbytes: self.cost(nbytes)[0], element_bytes)
        return self._calls[key]

    def steps(self, nbytes: int) -> int:
        """Sequential steps of the allreduce (at least 1; cached)."""
        if nbytes not in self._steps:
            self._steps[nbytes] = max(1, int(self.comm_model.steps(nbytes)))
        return self._steps[nbytes]

    def phases(self, nbytes: int) -> tuple[float, tuple[tuple[str, float], ...]]:
        """The allreduce as (fixed_s, bandwidth phases by link class) for the analytic network.

        Host-staged collectives include a copy to the host and one back at the host link's
        beta (``CommModel`` adds ``2 * host.beta`` per byte); they are split off as "host"
        phases so that they contend on the host link, not on the network.
        """
        if nbytes not in self._phases:
            fixed_s, per_byte_s = self.cost(nbytes)
            phases: tuple[tuple[str, float], ...] = (("net", per_byte_s),)
            if self.cluster.transport == "host" and self.cluster.total_devices > 1:
                copy = min(self.comm_model.link_params()["host"].beta_s_per_B, per_byte_s / 2)
                phases = (("host", copy), ("net", per_byte_s - 2 * copy), ("host", copy))
            self._phases[nbytes] = (fixed_s, phases)
        return self._phases[nbytes]


def prepare(cluster: str | Path | Cluster = "dgx1-p100", model: str | Path | Workload = "alexnet",
            batch: int | None = None, nodes: int | None = None, transport: str | None = None,
            profile: ComputeProfile | str | Path | None = None, comm_model: Any = None,
            algorithm: str = "auto", progress: str | None = None,
            devices_per_node: int | None = None, stack: str | Path | Stack | None = None,
            precision: str | None = None, throughput: float | None = None) -> Context:
    """Resolve names and files into a :class:`Context` (validating every input).

    This is the one place where a calibrated machine (a cluster with a ``calibration``) is
    applied: the fitted figures at the rank count (``devices_per_node``), and, unless a
    ``profile`` is given, the calibrated compute of the model with its noise. ``stack`` (a
    preset name, a YAML file or a :class:`~hwmodels.stacks.Stack`) picks the collective library
    and adds the framework's costs (host-staged transport for ``mpi`` unless ``transport`` is
    given); ``precision`` sets gradient bytes and compute rates; ``throughput`` scales the
    compute profile to a measured one-device samples/s.
    """
    stack_obj = resolve_stack(stack)
    if precision is not None and precision not in PRECISIONS:
        raise UnknownNameError("precision", precision, PRECISIONS)
    cluster_obj = resolve_cluster(cluster, nodes, devices_per_node)
    if stack_obj is not None and stack_obj.library.startswith("nccl") and \
            cluster_obj.device.kind != "gpu":
        raise SpecError("stack", stack_obj.name, f"a stack with library mpi on {cluster_obj.name}"
                        f" (its devices are CPUs; {stack_obj.library} runs on GPUs)")
    if transport is None and stack_obj is not None and stack_obj.transport == "host":
        transport = "host"
    cluster_obj = with_changes(cluster_obj, transport=transport, progress=progress)
    check_progress(cluster_obj)
    workload = model if isinstance(model, Workload) else load_workload(model)
    if precision is not None:
        workload = workload.with_element_bytes(GRAD_BYTES_PER_ELEMENT[precision])
    if isinstance(profile, (str, Path)):
        profile = load_profile(profile)
    calibration = cluster_obj.calibration
    calibrated = calibration is not None and profile is None and bool(calibration.profiles)
    if batch is None:
        batch = profile.batch if profile is not None else (
            (calibration.batches(workload.name) or [workload.default_batch])[0] if calibrated
            else workload.default_batch)
    if not isinstance(batch, (int, np.integer)) or isinstance(batch, bool) or batch <= 0:
        raise SpecError("batch", batch, "a whole number of samples per device > 0")
    batch = int(batch)
    compute = None
    if calibrated:
        compute = calibration.compute(workload.name, batch, cluster_obj.devices_per_node)
        if compute is None:
            raise calibration.missing_compute(workload.name, batch, cluster_obj.devices_per_node)
        profile = compute.profile
    if profile is None:
        profile = roofline_profile(workload, cluster_obj.device, batch,
                                   precision=precision or "fp32")
    check_profile(profile, workload, batch)
    if throughput is not None:
        profile = scaled_profile(profile, throughput)
    if comm_model is None:
        comm_model = build_comm_model(cluster_obj, algorithm, stack_obj)
    return Context(cluster_obj, workload, batch, profile, comm_model, compute=compute,
                   stack=stack_obj, precision=precision)


def build_comm_model(cluster: Cluster, algorithm: str = "auto",
                     stack: Stack | None = None) -> CommModel:
    """The one place a collective model is built: the cluster's, priced for the stack's
    library (without a stack, the cluster's default library: ``nccl2.8`` on GPUs with device
    transport, ``nccl2.20`` on Hopper, ``mpi`` otherwise)."""
    return CommModel(cluster, algorithm=algorithm,
                     library=stack.library if stack is not None else None)


def scaled_profile(profile: LayerTimes, throughput: float) -> LayerTimes:
    """``profile`` scaled so one device runs ``throughput`` samples/s (its shape kept)."""
    if not hasattr(profile, "scaled_to_throughput"):
        raise SpecError("throughput", throughput, "a ComputeProfile to scale (this profile "
                        f"is a {type(profile).__name__})")
    return profile.scaled_to_throughput(throughput)


def resolve_cluster(cluster: str | Path | Cluster, nodes: int | None,
                    devices_per_node: int | None = None) -> Cluster:
    """A Cluster object from a preset name, a file, or an object (at ``nodes`` and
    ``devices_per_node`` if given)."""
    if isinstance(cluster, Cluster):
        obj = cluster if nodes is None else cluster.with_nodes(nodes)
    else:
        obj = load_cluster(cluster, nodes=nodes)
    return obj if devices_per_node is None else obj.with_devices_per_node(devices_per_node)


def check_profile(profile: LayerTimes, workload: Workload, batch: int) -> None:
    """The profile must time every layer of the workload, at the batch being simulated."""
    layers = len(workload.layers)
    if len(profile.forward_s) != layers or len(profile.backward_s) != layers:
        raise SpecError("profile", f"{len(profile.forward_s)} layers",
                        f"{layers} layers, one per layer of {workload.name}")
    if profile.batch != batch:
        raise SpecError("batch", batch, f"the profile's batch {profile.batch} (profiles are "
                        "per batch size; make one for this batch)")


def strategy_spec(strategy: str | StrategySpec, bucket_bytes: int | None = None,
                  first_bucket_bytes: int | None = None, merge: str | None = None,
                  staleness: int | None = None, stack: Stack | None = None) -> StrategySpec:
    """A validated StrategySpec from a name (or a spec) and the knobs given.

    A strategy named by a string takes the stack's bucket (DDP's 25 MB, Horovod's fusion
    buffer) when no ``bucket_bytes`` is given.
    """
    if bucket_bytes is None and stack is not None and stack.bucket_bytes is not None \
            and isinstance(strategy, str):
        bucket_bytes = stack.bucket_bytes
    if isinstance(strategy, StrategySpec):
        base = asdict(strategy)
    elif isinstance(strategy, str):
        if strategy not in STRATEGIES:
            raise UnknownNameError("strategy", strategy, STRATEGIES)
        base = {"name": strategy}
    else:
        raise SpecError("strategy", strategy, "a strategy name or a StrategySpec")
    knobs = {"bucket_bytes": bucket_bytes, "first_bucket_bytes": first_bucket_bytes,
             "merge": merge, "staleness": staleness}
    if bucket_bytes is not None and first_bucket_bytes is None:
        knobs["first_bucket_bytes"] = min(bucket_bytes, base.get("first_bucket_bytes", 1 << 20))
    return StrategySpec(**{**base, **{k: v for k, v in knobs.items() if v is not None}})


def make_strategy_plan(spec: StrategySpec, ctx: Context) -> Plan:
    """The plan; MG-WFBP merging needs the backward times and the cost model. Under a stack
    that fuses by cycle (Horovod), size-rule buckets are its per-cycle fusions instead, and
    ``sync`` (every gradient handed over when the backward pass ends, as after gradient
    accumulation) is one cycle's fusion of all of them: buffers of at most the fusion
    threshold, never one message of the whole model (Horovod docs/tensor-fusion.rst)."""
    stack = ctx.stack
    if stack is not None and stack.fuses_by_cycle and spec.name == "bucketed" \
            and spec.merge == "size":
        return plan_cycle_fused(spec, ctx.wire_grad_bytes, ctx.profile.backward_s,
                                stack.cycle_s)
    if stack is not None and stack.fuses_by_cycle and spec.name == "sync":
        # All ready at once: the same cycle, split only by the fusion threshold.
        return plan_cycle_fused(spec, ctx.wire_grad_bytes,
                                [0.0] * len(ctx.wire_grad_bytes), stack.cycle_s)
    # Size-rule buckets (DDP's bucket_cap_mb) hold gradients at their own width; a
    # compression hook then casts each bucket for the wire. Horovod (above) compresses each
    # tensor before fusing, so its fusion threshold counts wire bytes.
    return on_the_wire(make_plan(spec, ctx.workload.grad_bytes,
                                 backward_s=ctx.profile.backward_s, cost=ctx.cost), ctx)


def on_the_wire(plan: Plan, ctx: Context) -> Plan:
    """``plan`` with each message's size as the collective carries it (the stack's
    compression, :attr:`Context.wire_grad_bytes`)."""
    wire = ctx.wire_grad_bytes
    if wire == ctx.workload.grad_bytes:
        return plan
    messages = tuple(replace(m, nbytes=sum(wire[i] for i in m.layers)) for m in plan.messages)
    return replace(plan, messages=messages)


def run_strategy(ctx: Context, spec: StrategySpec, settings: RunSettings) -> SimResult:
    """Plan and simulate one strategy in a resolved context."""
    started = time.perf_counter()
    cluster, ranks = ctx.cluster, ctx.cluster.total_devices
    plan = make_strategy_plan(spec, ctx)
    # One definition of warm-up for simulated and measured runs (vocab.timing).
    warmup = settings.warmup if settings.warmup is not None else warmup_iterations(spec)
    ordering = settings.ordering or default_ordering(cluster)
    interference = ctx.interference[0]
    setup = EngineSetup(tuple(layer.name for layer in ctx.workload.layers),
                        tuple(map(float, ctx.profile.forward_s)),
                        tuple(map(float, ctx.profile.backward_s)),
                        float(ctx.profile.update_s), plan, settings.iterations + warmup,
                        warmup, interference, ordering, cluster.progress,
                        stretch_comm=(cluster.device.kind == "gpu" and interference > 0
                                      and cluster.transport == "device"),
                        cycle_s=ctx.stack.cycle_s if ctx.stack is not None else 0.0,
                        # sync hands every message over when the backward pass ends
                        post_after_backward=spec.name == "sync" or (
                            ctx.stack is not None and ctx.stack.after_backward))
    stretch = 1.0 + interference if setup.stretch_comm else 1.0
    rng = np.random.default_rng(settings.seed)    # owned by this run: runs are independent
    factors = rank_factors(settings.noise, rng, setup.iterations, ranks)
    spread = spread_factors(speed_spread(cluster), ranks)
    if settings.fidelity == "analytic":
        refuse_analytic(cluster, settings)
        # Symmetric ranks: one representative, paced as the detailed engine's rank 0 advances
        # (the slowest rank each step; less for delayed, whose ranks may drift apart by
        # ``staleness`` steps).
        factors = pacing_factors(factors * spread, plan.staleness)
        output = run_engine(setup, lambda env, rows: AnalyticNetwork(
            env, ctx.phases, ordering, rows, ctx.steps, ctx.call_s, stretch, setup.cycle_s),
            factors)
    else:
        if cluster.progress != "async":
            raise SpecError("progress", cluster.progress, "async with fidelity='detailed' "
                            "(MPI progress gates are modelled by the analytic fidelity)")
        factors = node_factors(cluster, ctx.workload, ctx.batch, ctx.precision, settings.noise,
                               rng, factors) * spread
        check_detailed_size(cluster, setup, factors, settings.max_ranks)
        output = run_engine(setup, lambda env, rows: DetailedNetwork(
            env, cluster, ctx.comm_model, ordering, rows, ctx.call_s, stretch, setup.cycle_s,
            cluster.variation, settings.placement), factors)
    specs = resolved_specs(ctx, spec, settings, warmup, ordering)
    return SimResult(spec.name, run_id_for(specs), setup, output, ranks, ctx.batch, specs,
                     memory_breakdown(ctx.workload, plan, ctx.batch), int(settings.seed),
                     wall_s=time.perf_counter() - started)


def refuse_analytic(cluster: Cluster, settings: RunSettings) -> None:
    """The analytic fidelity's one representative rank cannot represent nodes that differ."""
    what = variation_summary(cluster.variation)
    if settings.placement != "packed" and not what:
        what = f"placement {settings.placement}"
    if what:
        raise SpecError("fidelity", "analytic", f"fidelity='detailed' for {cluster.name}: the "
                        f"analytic fidelity simulates one representative rank and cannot "
                        f"represent {what}")


def check_detailed_size(cluster: Cluster, setup: EngineSetup, factors: np.ndarray,
                        max_ranks: int | None) -> None:
    """Refuse more ranks than the bound; print the estimate before a long run."""
    ranks = cluster.total_devices
    classes = len(np.unique(factors.T, axis=0))
    seconds, nbytes = detailed_estimate(ranks, classes, setup)
    bound = max_ranks or MAX_DETAILED_RANKS
    estimate = f"estimated {seconds:.0f} s and {nbytes / 2**20:.0f} MiB"
    if ranks > bound:
        raise SpecError("ranks", ranks, f"at most {bound} for fidelity='detailed' ({estimate} "
                        "at this size; raise the bound with max_ranks or --max-ranks)")
    if seconds > ESTIMATE_NOTICE_S:
        print(f"detailed fidelity, {ranks} ranks in {classes} rank classes: {estimate}",
              file=sys.stderr)


def resolved_specs(ctx: Context, spec: StrategySpec, settings: RunSettings, warmup: int,
                   ordering: str) -> dict[str, Any]:
    """Every input of a run with its defaults made explicit (the run record's ``specs``)."""
    cluster = ctx.cluster
    return {
        "cluster": {"name": cluster.name, "nodes": cluster.nodes,
                    "devices_per_node": cluster.devices_per_node, "device": cluster.device.name,
                    "nics_per_node": len(cluster.node.nics), "fabric": cluster.fabric.name, "oversubscription": cluster.oversubscription,
                    "transport": cluster.transport, "progress": cluster.progress,
                    "collective_overhead_s": cluster.collective_overhead_s,
                    "comm_interference": ctx.interference[0],
                    "comm_interference_from": ctx.interference[1],
                    "speed_spread": speed_spread(cluster),
                    "fitted": {k: asdict(v) for k, v in cluster.fitted.items()},
                    # what a what-if changed (hwmodels.cluster.with_changes), if anything
                    "changes": list(cluster.provenance.get("changes", []))},
        "workload": {"name": ctx.workload.name, "layers": len(ctx.workload.layers),
                     "total_grad_bytes": ctx.workload.total_grad_bytes,
                     "precision": ctx.precision},
        "batch": ctx.batch,
        "profile": {"source": ctx.profile.source,
                    "calibrated": None if ctx.compute is None else {
                        "measured_occupancy": ctx.compute.measured_occupancy,
                        "extrapolated": ctx.compute.extrapolated,
                        "noise_cv": ctx.compute.noise_cv},
                    "forward_s": float(sum(ctx.profile.forward_s)),
                    "backward_s": float(sum(ctx.profile.backward_s)),
                    "update_s": float(ctx.profile.update_s)},
        # The library era priced (the stack's, else the cluster's default): defaults move
        # (Hopper gets nccl2.20), and a record should say which one this run had. A custom
        # cost model (the CostModel protocol) has none.
        "comm": {"algorithm": ctx.comm_model.algorithm,
                 "library": getattr(ctx.comm_model, "era", None)},
        "stack": stack_record(ctx.stack),
        "strategy": asdict(spec),
        "variation": variation_record(cluster.variation),
        "run": {**asdict(settings), "noise": asdict(settings.noise), "warmup": warmup,
                "ordering": ordering},
    }


def run_id_for(specs: dict[str, Any]) -> str:
    """A deterministic id: the same inputs give the same id (and the same trace)."""
    digest = hashlib.sha1(json.dumps(specs, sort_keys=True, default=str).encode()).hexdigest()
    return make_run_id("sim", specs["workload"]["name"], specs["strategy"]["name"], digest[:10])


def simulate(cluster: str | Path | Cluster = "dgx1-p100", model: str | Path | Workload = "alexnet",
             batch: int | None = None, strategy: str | StrategySpec = "sync",
             nodes: int | None = None, iterations: int | None = None,
             fidelity: str = "analytic",
             seed: int = 0, noise: NoiseSpec | dict | float | None = None,
             transport: str | None = None, profile: ComputeProfile | str | Path | None = None,
             bucket_bytes: int | None = None, staleness: int | None = None,
             merge: str | None = None, first_bucket_bytes: int | None = None,
             ordering: str | None = None, warmup: int | None = None,
             comm_model: Any = None, algorithm: str = "auto",
             progress: str | None = None, devices_per_node: int | None = None,
             stack: str | Path | Stack | None = None, precision: str | None = None,
             throughput: float | None = None, max_ranks: int | None = None,
             placement: str = "packed") -> SimResult:
    """Simulate one strategy; see the module docstring and :class:`SimResult`.

    ``progress`` overrides the cluster's MPI progress mode (``"async"``, ``"wait"``,
    ``"test"``; see :mod:`simulator.progress`); ``devices_per_node`` the node's rank count
    where its topology allows (a calibrated machine then uses its figures at that count).
    ``iterations`` defaults to 5, or 40 with noise (a calibrated profile brings its own).
    ``stack``, ``precision`` and ``throughput`` as in :func:`prepare`; None keeps the model
    without framework costs, at the workload's element bytes and the roofline's rates.
    ``max_ranks`` raises the detailed fidelity's bound on ranks; ``placement`` puts the nodes
    on a cluster's leaf switches (``hwmodels.hetero.PLACEMENTS``).
    """
    ctx = prepare(cluster, model, batch, nodes, transport, profile, comm_model, algorithm,
                  progress, devices_per_node, stack, precision, throughput)
    spec = strategy_spec(strategy, bucket_bytes, first_bucket_bytes, merge, staleness,
                         ctx.stack)
    refuse_unused_staleness([spec], staleness)
    return run_strategy(ctx, spec, settings_for(ctx, iterations, fidelity, seed, noise,
                                                ordering, warmup, max_ranks, placement))


def compare(strategies: Sequence[str | StrategySpec] = ("sync", "layerwise", "bucketed",
                                                          "delayed"),
            cluster: str | Path | Cluster = "dgx1-p100", model: str | Path | Workload = "alexnet",
            batch: int | None = None, nodes: int | None = None, iterations: int | None = None,
            fidelity: str = "analytic", seed: int = 0,
            noise: NoiseSpec | dict | float | None = None, transport: str | None = None,
            profile: ComputeProfile | str | Path | None = None, bucket_bytes: int | None = None,
            staleness: int | None = None, merge: str | None = None,
            ordering: str | None = None, comm_model: Any = None,
            algorithm: str = "auto", progress: str | None = None,
            devices_per_node: int | None = None, stack: str | Path | Stack | None = None,
            precision: str | None = None, throughput: float | None = None,
            max_ranks: int | None = None, placement: str = "packed") -> Comparison:
    """Simulate several strategies on the same inputs; sync is the baseline (run if absent).

    ``progress``, ``stack``, ``precision``, ``throughput``, ``max_ranks`` and ``placement``
    as in :func:`simulate`.
    """
    if isinstance(strategies, str):
        strategies = [s for s in strategies.split(",") if s]
    specs = [strategy_spec(s, bucket_bytes, None, merge, staleness) for s in strategies]
    if not specs:
        raise SpecError("strategies", [], "at least one strategy")
    refuse_unused_staleness(specs, staleness)
    ctx = prepare(cluster, model, batch, nodes, transport, profile, comm_model, algorithm,
                  progress, devices_per_node, stack, precision, throughput)
    specs = [strategy_spec(s, bucket_bytes, None, merge, staleness, ctx.stack)
             for s in strategies]
    settings = settings_for(ctx, iterations, fidelity, seed, noise, ordering,
                            max_ranks=max_ranks, placement=placement)
    results = {label(s): run_strategy(ctx, s, settings) for s in specs}
    baseline = results.get("sync") or run_strategy(ctx, StrategySpec("sync"), settings)
    return Comparison(results, baseline, trust=trust_for(ctx.cluster),
                      device_memory_bytes=ctx.cluster.node.device.memory_bytes)


def refuse_unused_staleness(specs: Sequence[StrategySpec], staleness: int | None) -> None:
    """A staleness given for strategies that all ignore it is a mistake, not a no-op."""
    if staleness is not None and not any(s.name == "delayed" for s in specs):
        raise SpecError("staleness", staleness, "no staleness for " + ", ".join(
            s.name for s in specs) + " (only delayed applies stale gradients)")


def label(spec: StrategySpec) -> str:
    """A strategy's name in tables (``bucketed+mgwfbp`` for the merge rule)."""
    return spec.name + ("+mgwfbp" if spec.merge == "mgwfbp" and
                        spec.name in ("bucketed", "crossiter") else "")


@lru_cache(maxsize=64)
def cached_context(cluster: str, model: str, batch: int | None, nodes: int | None,
                   transport: str | None, stack: str | None = None,
                   precision: str | None = None, throughput: float | None = None,
                   devices_per_node: int | None = None, algorithm: str = "auto") -> Context:
    """A Context for names (sweeps reuse it across strategies and bucket sizes)."""
    return prepare(cluster, model, batch, nodes, transport, None, None, algorithm,
                   devices_per_node=devices_per_node, stack=stack, precision=precision,
                   throughput=throughput)
