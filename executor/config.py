"""Run settings of the executor: one frozen, validated spec shared by the launcher and the ranks.

The same argument parser serves ``gradsync run`` (which starts ``mpiexec``) and
``python -m executor`` (what every rank runs), so a setting means the same thing on both sides.
The strategy is one :class:`~vocab.strategies.StrategySpec`, bucket sizes in bytes, as the
simulator's: the ``--bucket-mb`` / ``--first-bucket-mb`` flags are MiB for humans, converted
once, when the arguments are parsed (:func:`exec_strategy`). ``ddp``, torch DDP as the peer
baseline, is a StrategySpec too (``vocab.strategies.BASELINES``: a name with no Plan; its
``bucket_bytes`` is DDP's bucket cap). Importing this module loads neither torch nor mpi4py.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from vocab.argtypes import (BATCH, BUCKET_MB, EVERY, LR, MOMENTUM, RANKS, REPEATS, SECONDS, SEED,
                            STALENESS, STEPS, WEIGHT_DECAY, real, whole)
from vocab.errors import SpecError, UnknownNameError
from vocab.strategies import BASELINES, STRATEGIES, StrategySpec
from vocab.units import MiB

#: Strategies the executor runs: the shared plans plus torch DDP as the peer baseline.
EXEC_STRATEGIES = STRATEGIES + BASELINES
DTYPES = ("float32", "float64")
FAIL_MODES = ("raise", "kill")
DEVICES = ("auto", "cpu", "cuda")
#: Seconds between the training loop's periodic parts (``--trace-flush-s``). A part costs
#: 1.5-1.9 ms of CPU between steps, half of it fixed per file (benchmarks/README.md,
#: "Recording overhead"), so one part a second is <= 0.2 % of any run, where one every 10
#: steps was 1.5 % of an 11 ms step. What it trades: a rank killed before it could flush
#: (SIGKILL, OOM; a raised error or a signal still flushes) loses about this much of its
#: trace, plus the step under way, or its last ``flush_every`` steps where those are slower.
FLUSH_EVERY_S = 1.0


@dataclass(frozen=True)
class RunConfig:
    """Every setting of one executor run, defaults explicit (what ``run.json`` records)."""

    nprocs: int
    model: str
    strategy: StrategySpec
    batch: int
    steps: int
    out: str
    data: str = "synthetic"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 0.0
    seed: int = 0
    dtype: str = "float32"
    device: str = "auto"
    checkpoint_every: int = 0
    resume: bool = False
    trace: bool = True
    flush_every: int = 10
    trace_flush_s: float = FLUSH_EVERY_S
    comm_timeout_s: float = 60.0
    eval_every: int = 0
    warmup_steps: int = 0
    base_batch: int = 0
    local: bool = False
    fail_at_step: int = -1
    fail_rank: int = 0
    fail_mode: str = "raise"

    def __post_init__(self) -> None:
        _check_int("nprocs", self.nprocs, 1)
        _check_int("batch", self.batch, 1)
        _check_int("steps", self.steps, 1)
        _check_int("checkpoint_every", self.checkpoint_every, 0)
        _check_int("flush_every", self.flush_every, 1)
        _check_int("eval_every", self.eval_every, 0)
        _check_int("warmup_steps", self.warmup_steps, 0)
        _check_int("base_batch", self.base_batch, 0)
        if not isinstance(self.strategy, StrategySpec):
            raise SpecError("strategy", self.strategy, "a StrategySpec (see exec_strategy)")
        if self.strategy.merge != "size":
            raise SpecError("merge", self.strategy.merge, "'size' (the executor lays buckets "
                            "out by size; MG-WFBP merging is the simulator's)")
        if self.dtype not in DTYPES:
            raise UnknownNameError("dtype", self.dtype, DTYPES)
        if self.device not in DEVICES:
            raise UnknownNameError("device", self.device, DEVICES)
        if self.local and self.strategy.is_baseline:
            raise SpecError("local", self.local, "false with strategy ddp (a local run "
                            "exchanges no gradients; use one of " + ", ".join(STRATEGIES) + ")")
        if self.fail_mode not in FAIL_MODES:
            raise UnknownNameError("fail_mode", self.fail_mode, FAIL_MODES)
        if not 0 <= self.trace_flush_s < float("inf"):
            raise SpecError("trace_flush_s", self.trace_flush_s, "a finite number >= 0")
        if not self.comm_timeout_s > 0:
            raise SpecError("comm_timeout_s", self.comm_timeout_s, "a number > 0")
        for name in ("lr", "momentum", "weight_decay"):
            if not 0 <= getattr(self, name) < float("inf"):
                raise SpecError(name, getattr(self, name), "a finite number >= 0")
        if not self.momentum < 1:       # >= 1 makes SGD's velocity grow without bound
            raise SpecError("momentum", self.momentum, "a number in [0, 1)")
        if not (self.data in ("synthetic", "digits") or self.data.startswith("npz:")
                or _is_modadd(self.data)):
            raise SpecError("data", self.data, "'synthetic', 'digits', 'modadd:P' (P >= 2) "
                            "or 'npz:PATH'")
        if not self.out:
            raise SpecError("out", self.out, "an output directory")

    @property
    def global_batch(self) -> int:
        """Samples per step over all ranks (``nprocs * batch``)."""
        return self.nprocs * self.batch

    def lr_at(self, step: int) -> float:
        """The learning rate of ``step`` (0-based): ``lr``, times ``global_batch / base_batch``
        with the linear-scaling rule (``base_batch > 0``), ramped linearly over the first
        ``warmup_steps`` steps (see :func:`scheduled_lr`)."""
        return scheduled_lr(self.lr, step, self.global_batch, self.base_batch,
                            self.warmup_steps)

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain JSON-ready values (``strategy`` a dict, sizes in bytes)."""
        return asdict(self)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "RunConfig":
        """Build from parsed arguments (see :func:`add_run_arguments`); MiB become bytes here."""
        strategy = exec_strategy(args.strategy, args.bucket_mb, args.first_bucket_mb,
                                 args.staleness)
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls)
                      if f.name != "strategy"}, strategy=strategy)


def scheduled_lr(lr: float, step: int, global_batch: int, base_batch: int = 0,
                 warmup_steps: int = 0) -> float:
    """Learning rate at ``step`` (0-based) of a run at ``global_batch``.

    ``base_batch > 0`` applies the linear-scaling rule (Goyal et al. 2017: ``lr`` is per
    ``base_batch`` samples, so ``lr * global_batch / base_batch``); ``warmup_steps > 0`` ramps
    it linearly from ``1 / warmup_steps`` of that to all of it at step ``warmup_steps - 1``
    (their gradual warm-up, which large scaled rates need). Staleness interacts with both: a
    delayed update is only stable below a bound that shrinks with ``d``.
    """
    peak = lr * global_batch / base_batch if base_batch else lr
    if warmup_steps and step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    return peak


_DEFAULT = StrategySpec("sync")
DEFAULT_BUCKET_MB = _DEFAULT.bucket_bytes / MiB
DEFAULT_FIRST_BUCKET_MB = _DEFAULT.first_bucket_bytes / MiB


def exec_strategy(name: str, bucket_mb: float = DEFAULT_BUCKET_MB,
                  first_bucket_mb: float = DEFAULT_FIRST_BUCKET_MB,
                  staleness: int | None = None) -> StrategySpec:
    """The StrategySpec of the CLI's flags: ``--bucket-mb`` and ``--first-bucket-mb`` are MiB
    (a size that rounds below one byte is one byte), converted to bytes once, here.
    ``staleness`` is for ``delayed`` only (None: its default); given for another strategy
    it is refused, as it would silently do nothing."""
    if staleness is not None and name != "delayed":
        raise SpecError("staleness", staleness, f"no staleness for {name} (only delayed "
                        "applies stale gradients)")
    staleness = _DEFAULT.staleness if staleness is None else staleness
    sizes = {}
    for flag, value in (("bucket_mb", bucket_mb), ("first_bucket_mb", first_bucket_mb)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise SpecError(flag, value, "a size in MiB > 0")
        sizes[flag] = max(1, int(value * MiB))
    return StrategySpec(name, bucket_bytes=sizes["bucket_mb"],
                        first_bucket_bytes=sizes["first_bucket_mb"], staleness=staleness)


def _is_modadd(data: str) -> bool:
    """``modadd:P`` with a whole ``P >= 2`` (the upper bound is the model's, checked at load)."""
    text = data[len("modadd:"):] if data.startswith("modadd:") else ""
    return text.isdigit() and int(text) >= 2


def _check_int(name: str, value: Any, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise SpecError(name, value, f"a whole number >= {minimum}")


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the executor's options (shared by ``gradsync run`` and ``python -m executor``)."""
    d = RunConfig.__dataclass_fields__
    parser.add_argument("-n", "--nprocs", type=RANKS, default=1, help="MPI ranks (default 1)")
    parser.add_argument("--model", required=True,
                        help="model name (zoo or tiny-*), or your own model's factory "
                             "PKG.MODULE:FACTORY or FILE.py:FACTORY (see executor.usermodel)")
    parser.add_argument("--strategy", default="sync",
                        help="one of " + ", ".join(EXEC_STRATEGIES) + " (default sync; with "
                             "--local there is no exchange, so it only sets the buffers)")
    parser.add_argument("--batch", type=BATCH, required=True, help="per-rank batch size")
    parser.add_argument("--steps", type=STEPS, required=True, help="training steps in total")
    parser.add_argument("--out", required=True, help="run directory (must not hold another run)")
    parser.add_argument("--data", default=d["data"].default,
                        help="synthetic | digits | modadd:P ((a + b) mod P, generated) | "
                             "npz:PATH (arrays x and y)")
    parser.add_argument("--bucket-mb", type=BUCKET_MB, default=DEFAULT_BUCKET_MB,
                        help=f"bucket size in MiB (bucketed, crossiter; ddp's bucket cap; "
                             f"default {DEFAULT_BUCKET_MB:g})")
    parser.add_argument("--first-bucket-mb", type=BUCKET_MB, default=DEFAULT_FIRST_BUCKET_MB,
                        help=f"first bucket in MiB (default {DEFAULT_FIRST_BUCKET_MB:g})")
    parser.add_argument("--staleness", type=STALENESS, default=None,
                        help=f"delayed only: the update at t applies the gradient of t - d "
                             f"(default {_DEFAULT.staleness})")
    parser.add_argument("--lr", type=LR, default=d["lr"].default)
    parser.add_argument("--momentum", type=MOMENTUM, default=d["momentum"].default)
    parser.add_argument("--weight-decay", type=WEIGHT_DECAY, default=d["weight_decay"].default)
    parser.add_argument("--seed", type=SEED, default=d["seed"].default)
    parser.add_argument("--dtype", default=d["dtype"].default, help="float32 | float64")
    parser.add_argument("--device", default=d["device"].default, help="auto | cpu | cuda")
    parser.add_argument("--checkpoint-every", type=EVERY, default=0,
                        help="save a checkpoint every K steps (0: never)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its last checkpoint")
    parser.add_argument("--no-trace", dest="trace", action="store_false",
                        help="record no per-layer trace (to measure the tracing overhead)")
    parser.add_argument("--flush-every", type=whole(1, 10_000_000, what="steps between flushes"), default=d["flush_every"].default,
                        help="write partial per-rank traces at most every K steps "
                             "(default %(default)s; see --trace-flush-s)")
    parser.add_argument("--trace-flush-s", type=real(0, 24 * 3600, what="seconds between "
                                                     "trace parts, 0: every --flush-every "
                                                     "steps"),
                        default=d["trace_flush_s"].default,
                        help="...and once this many seconds have passed since the last part "
                             "(default %(default)s: a killed rank loses about that much of "
                             "its trace; 0: every --flush-every steps)")
    parser.add_argument("--comm-timeout-s", type=SECONDS, default=d["comm_timeout_s"].default,
                        help="abort the job when a collective takes longer than this")
    parser.add_argument("--eval-every", type=EVERY, default=0,
                        help="test accuracy every K steps and at the end (0: end only)")
    parser.add_argument("--warmup-steps", type=EVERY, default=0,
                        help="ramp the learning rate linearly over the first K steps (0: none)")
    parser.add_argument("--base-batch", type=EVERY, default=0,
                        help="linear-scaling rule: --lr is per this many samples, scaled by "
                             "global batch / base batch (0: --lr as given)")
    parser.add_argument("--local", action="store_true",
                        help="exchange no gradients: every rank trains its own replica, placed "
                             "and threaded as in a real run (a compute profile at this rank "
                             "count, for calibration)")
    # Test-only fault injection (hidden from --help).
    parser.add_argument("--fail-at-step", type=whole(-1, 10_000_000), default=-1, help=argparse.SUPPRESS)
    parser.add_argument("--fail-rank", type=whole(0, 4096), default=0, help=argparse.SUPPRESS)
    parser.add_argument("--fail-mode", default="raise", help=argparse.SUPPRESS)


def to_argv(cfg: RunConfig) -> list[str]:
    """The ``python -m executor`` arguments that reproduce ``cfg``."""
    argv: list[str] = []
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        flag = "--" + f.name.replace("_", "-")
        if f.name == "strategy":
            # bytes / 2**20 and back is exact in binary floating point: the ranks get the
            # very bytes of cfg.
            argv += ["--strategy", value.name, "--bucket-mb", repr(value.bucket_bytes / MiB),
                     "--first-bucket-mb", repr(value.first_bucket_bytes / MiB)]
            if value.name == "delayed":
                argv += ["--staleness", str(value.staleness)]
        elif f.name == "trace":
            argv += [] if value else ["--no-trace"]
        elif f.name in ("resume", "local"):
            argv += [flag] if value else []
        else:
            argv += [flag, str(value)]
    return argv


def add_profile_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the per-layer profile options (shared by ``gradsync profile`` and ``python -m
    executor.profile``; torch-free, so the gradsync parser can build without torch)."""
    parser.add_argument("--model", required=True, help="zoo name or PKG.MODULE:FACTORY")
    parser.add_argument("--batch", type=BATCH, required=True, help="samples per step")
    parser.add_argument("--threads", type=THREADS, default=1, help="torch threads (default 1)")
    parser.add_argument("--repeats", type=REPEATS, default=20, help="timed steps (default 20)")
    parser.add_argument("--warmup", type=WARMUP, default=3, help="untimed steps first")
    parser.add_argument("--out", type=Path, required=True, help="profile file to write (.yaml)")
    parser.add_argument("--force", action="store_true", help="overwrite --out")


THREADS = whole(1, 1024, what="torch threads")
WARMUP = whole(0, 100_000, what="untimed steps")
