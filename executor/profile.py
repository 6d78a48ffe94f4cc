"""Measure a zoo model's per-layer compute profile with a given torch thread count.

``python -m executor.profile --model M --batch B --threads T --out FILE`` times ``--repeats``
training steps (after ``--warmup``) with :func:`executor.introspect.measure_profile` on the
model's synthetic batch and writes a :class:`vocab.profile.ComputeProfile` (medians per
layer) with :func:`vocab.profile.save_profile`.

Profile with the thread count the ranks will use: ranks of a 2- or 4-rank run on a 2-core
machine each run one torch thread (:func:`executor.comm.threads_per_rank`), and a profile
measured with two threads would transfer to them neither in level nor in shape (on a shared
machine, two OpenMP threads also stall whenever another process holds one of the cores).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Sequence

import torch

from executor.config import add_profile_arguments
from executor.introspect import measure_profile
from executor.modelsrc import build_source
from vocab.argtypes import OneLineParser
from vocab.errors import GradsyncError, SpecError
from vocab.outpath import check_output
from vocab.profile import ComputeProfile, save_profile

DEVICE = "local-cpu"


def profile_model(model: str, batch: int, threads: int = 1, repeats: int = 20,
                  warmup: int = 3, device: str = DEVICE, seed: int = 0) -> ComputeProfile:
    """Median per-layer times of ``repeats`` training steps of ``model`` at ``batch`` samples
    on ``threads`` torch threads (the thread count is set for this process)."""
    for name, value, low in (("batch", batch, 1), ("threads", threads, 1),
                             ("repeats", repeats, 1), ("warmup", warmup, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise SpecError(name, value, f"a whole number >= {low}")
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    source = build_source(model)
    x, y = source.synthetic(seed, batch)
    started = time.perf_counter()
    profile = measure_profile(source.model, x, source.loss_fn, device, repeats=repeats,
                              target=y, warmup=warmup, model_name=model)
    return _with_source(profile, f"{profile.source}; {threads} torch thread(s), batch {batch}, "
                                 f"{time.perf_counter() - started:.1f} s")


def _with_source(profile: ComputeProfile, source: str) -> ComputeProfile:
    return ComputeProfile(profile.device, profile.model, profile.batch, profile.forward_s,
                          profile.backward_s, profile.update_s, source, profile.layer_names)


def profile_to_file(args: argparse.Namespace) -> str:
    """Measure the profile the :func:`executor.config.add_profile_arguments` options ask for,
    write it to ``args.out`` (refused before measuring if it exists, unless ``args.force``) and
    return a one-line summary."""
    check_output(args.out, overwrite=args.force)    # before measuring, not after
    profile = profile_model(args.model, args.batch, args.threads, args.repeats, args.warmup,
                            getattr(args, "device_name", DEVICE))
    save_profile(profile, Path(args.out), overwrite=args.force)
    return (f"{args.model} batch {args.batch} on {args.threads} thread(s): forward "
            f"{sum(profile.forward_s) * 1e3:.2f} ms, backward {sum(profile.backward_s) * 1e3:.2f}"
            f" ms, update {profile.update_s * 1e3:.2f} ms per step ({len(profile.forward_s)} "
            f"layers) -> {args.out}")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m executor.profile``: measure and write one profile file."""
    parser = OneLineParser(prog="python -m executor.profile", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    add_profile_arguments(parser)
    parser.add_argument("--device-name", default=DEVICE, help="the profile's device name")
    args = parser.parse_args(argv)
    try:
        print(profile_to_file(args))
    except GradsyncError as exc:
        parser.exit(2, f"python -m executor.profile: {exc}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
