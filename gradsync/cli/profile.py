"""``gradsync profile``: measure a model's per-layer compute profile on this machine.

    gradsync profile --model mymodels.py:make --batch 8 --out profile.yaml

The model is a zoo name or your own factory (``PKG.MODULE:FACTORY``, ``FILE.py:FACTORY``);
the profile (median forward and backward seconds per layer, and the update) is what
``gs.simulate(profile=...)`` and calibration use. The same as ``python -m executor.profile``.
"""

from __future__ import annotations

import argparse
import importlib

from executor.config import add_profile_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``profile`` subcommand."""
    p = subparsers.add_parser("profile", help="measure a model's per-layer compute profile",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_profile_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Measure and write the profile; print its totals."""
    # torch is optional for gradsync: imported only for this command.
    print(importlib.import_module("executor.profile").profile_to_file(args))
    return 0
