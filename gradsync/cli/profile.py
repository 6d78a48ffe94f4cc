"""``gradsync profile``: measure a model's per-layer compute profile on this machine.

    gradsync profile --model mymodels.py:make --batch 8 --out profile.yaml

The model is a zoo name or your own factory (``PKG.MODULE:FACTORY``, ``FILE.py:FACTORY``);
the profile (median forward and backward seconds per layer, and the update) is what
``gs.simulate(profile=...)`` and calibration use. The same as ``python -m executor.profile``.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from vocab.argtypes import BATCH, REPEATS, whole
from vocab.outpath import check_output

THREADS = whole(1, 1024, what="torch threads")
WARMUP = whole(0, 100_000, what="untimed steps")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``profile`` subcommand."""
    p = subparsers.add_parser("profile", help="measure a model's per-layer compute profile",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="zoo name or PKG.MODULE:FACTORY")
    p.add_argument("--batch", type=BATCH, required=True, help="samples per step")
    p.add_argument("--threads", type=THREADS, default=1, help="torch threads (default 1)")
    p.add_argument("--repeats", type=REPEATS, default=20, help="timed steps (default 20)")
    p.add_argument("--warmup", type=WARMUP, default=3, help="untimed steps first")
    p.add_argument("--out", type=Path, required=True, help="profile file to write (.yaml)")
    p.add_argument("--force", action="store_true", help="overwrite --out")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Measure and write the profile; print its totals."""
    check_output(args.out, overwrite=args.force)    # before measuring, not after
    # torch is optional for gradsync: imported only for this command.
    profile_mod = importlib.import_module("executor.profile")
    save_profile = importlib.import_module("vocab.profile").save_profile
    profile = profile_mod.profile_model(args.model, args.batch, args.threads, args.repeats,
                                        args.warmup)
    save_profile(profile, args.out, overwrite=args.force)
    print(f"{args.model} batch {args.batch}: forward {sum(profile.forward_s) * 1e3:.2f} ms, "
          f"backward {sum(profile.backward_s) * 1e3:.2f} ms, update "
          f"{profile.update_s * 1e3:.2f} ms per step ({len(profile.forward_s)} layers) -> "
          f"{args.out}")
    return 0
