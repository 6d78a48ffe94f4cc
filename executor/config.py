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
from typing import Any

from vocab.errors import SpecError, UnknownNameError
from vocab.strategies import BASELINES, STRATEGIES, StrategySpec
from vocab.units import MiB

#: Strategies the executor runs: the shared plans plus torch DDP as the peer baseline.
EXEC_STRATEGIES = STRATEGIES + BASELINES
DTYPES = ("float32", "float64")
FAIL_MODES = ("raise", "kill")
DEVICES = ("auto", "cpu", "cuda")


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
    comm_timeout_s: float = 60.0
    eval_every: int = 0
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
        if not self.comm_timeout_s > 0:
            raise SpecError("comm_timeout_s", self.comm_timeout_s, "a number > 0")
        for name in ("lr", "momentum", "weight_decay"):
            if not getattr(self, name) >= 0:
                raise SpecError(name, getattr(self, name), "a number >= 0")
        if not (self.data in ("synthetic", "digits") or self.data.startswith("npz:")):
            raise SpecError("data", self.data, "'synthetic', 'digits' or 'npz:PATH'")
        if not self.out:
            raise SpecError("out", self.out, "an output directory")

    @property
    def global_batch(self) -> int:
        """Samples per step over all ranks (``nprocs * batch``)."""
        return self.nprocs * self.batch

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


_DEFAULT = StrategySpec("sync")
DEFAULT_BUCKET_MB = _DEFAULT.bucket_bytes / MiB
DEFAULT_FIRST_BUCKET_MB = _DEFAULT.first_bucket_bytes / MiB


def exec_strategy(name: str, bucket_mb: float = DEFAULT_BUCKET_MB,
                  first_bucket_mb: float = DEFAULT_FIRST_BUCKET_MB,
                  staleness: int = _DEFAULT.staleness) -> StrategySpec:
    """The StrategySpec of the CLI's flags: ``--bucket-mb`` and ``--first-bucket-mb`` are MiB
    (a size that rounds below one byte is one byte), converted to bytes once, here."""
    sizes = {}
    for flag, value in (("bucket_mb", bucket_mb), ("first_bucket_mb", first_bucket_mb)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise SpecError(flag, value, "a size in MiB > 0")
        sizes[flag] = max(1, int(value * MiB))
    return StrategySpec(name, bucket_bytes=sizes["bucket_mb"],
                        first_bucket_bytes=sizes["first_bucket_mb"], staleness=staleness)


def _check_int(name: str, value: Any, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise SpecError(name, value, f"a whole number >= {minimum}")


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the executor's options (shared by ``gradsync run`` and ``python -m executor``)."""
    d = RunConfig.__dataclass_fields__
    parser.add_argument("-n", "--nprocs", type=int, default=1, help="MPI ranks (default 1)")
    parser.add_argument("--model", required=True,
                        help="model name (zoo or tiny-*), or your own model's factory "
                             "PKG.MODULE:FACTORY or FILE.py:FACTORY (see executor.usermodel)")
    parser.add_argument("--strategy", default="sync",
                        help="one of " + ", ".join(EXEC_STRATEGIES) + " (default sync; with "
                             "--local there is no exchange, so it only sets the buffers)")
    parser.add_argument("--batch", type=int, required=True, help="per-rank batch size")
    parser.add_argument("--steps", type=int, required=True, help="training steps in total")
    parser.add_argument("--out", required=True, help="run directory (must not hold another run)")
    parser.add_argument("--data", default=d["data"].default,
                        help="synthetic | digits | npz:PATH (arrays x and y)")
    parser.add_argument("--bucket-mb", type=float, default=DEFAULT_BUCKET_MB,
                        help=f"bucket size in MiB (bucketed, crossiter; ddp's bucket cap; "
                             f"default {DEFAULT_BUCKET_MB:g})")
    parser.add_argument("--first-bucket-mb", type=float, default=DEFAULT_FIRST_BUCKET_MB,
                        help=f"first bucket in MiB (default {DEFAULT_FIRST_BUCKET_MB:g})")
    parser.add_argument("--staleness", type=int, default=_DEFAULT.staleness,
                        help="delayed: the update at t applies the gradient of t - d")
    parser.add_argument("--lr", type=float, default=d["lr"].default)
    parser.add_argument("--momentum", type=float, default=d["momentum"].default)
    parser.add_argument("--weight-decay", type=float, default=d["weight_decay"].default)
    parser.add_argument("--seed", type=int, default=d["seed"].default)
    parser.add_argument("--dtype", default=d["dtype"].default, help="float32 | float64")
    parser.add_argument("--device", default=d["device"].default, help="auto | cpu | cuda")
    parser.add_argument("--checkpoint-every", type=int, default=0,
                        help="save a checkpoint every K steps (0: never)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its last checkpoint")
    parser.add_argument("--no-trace", dest="trace", action="store_false",
                        help="record no per-layer trace (to measure the tracing overhead)")
    parser.add_argument("--flush-every", type=int, default=d["flush_every"].default,
                        help="write partial per-rank traces every K steps")
    parser.add_argument("--comm-timeout-s", type=float, default=d["comm_timeout_s"].default,
                        help="abort the job when a collective takes longer than this")
    parser.add_argument("--eval-every", type=int, default=0,
                        help="test accuracy every K steps and at the end (0: end only)")
    parser.add_argument("--local", action="store_true",
                        help="exchange no gradients: every rank trains its own replica, placed "
                             "and threaded as in a real run (a compute profile at this rank "
                             "count, for calibration)")
    # Test-only fault injection (hidden from --help).
    parser.add_argument("--fail-at-step", type=int, default=-1, help=argparse.SUPPRESS)
    parser.add_argument("--fail-rank", type=int, default=0, help=argparse.SUPPRESS)
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
                     "--first-bucket-mb", repr(value.first_bucket_bytes / MiB),
                     "--staleness", str(value.staleness)]
        elif f.name == "trace":
            argv += [] if value else ["--no-trace"]
        elif f.name in ("resume", "local"):
            argv += [flag] if value else []
        else:
            argv += [flag, str(value)]
    return argv
