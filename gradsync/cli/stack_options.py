"""The software stack and configuration flags of ``simulate``, ``sweep`` and ``whatif``.

``--stack NAME|FILE`` (a preset of ``hwmodels/data/stacks.yaml`` or a user's YAML),
``--precision fp32|amp|fp16|bf16`` and ``--throughput SAMPLES_PER_S`` (a measured one-device
throughput the compute profile is scaled to). :func:`stack_kwargs` turns them into the keyword
arguments of :func:`simulator.api.compare` and :func:`simulator.api.simulate`. (The cluster
flags, ``--gpus-per-node`` among them, are in :mod:`gradsync.cli.cluster_options`.)
"""

from __future__ import annotations

import argparse
from typing import Any

from hwmodels.specs import PRECISIONS
from hwmodels.stacks import list_stacks
from vocab.argtypes import THROUGHPUT


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --stack, --precision and --throughput to ``parser``."""
    parser.add_argument("--stack", metavar="NAME|FILE",
                        help="software stack: collective library and framework costs, a preset "
                             f"({', '.join(list_stacks())}) or a YAML file (default: the "
                             "library alone, no framework costs)")
    parser.add_argument("--precision", choices=PRECISIONS,
                        help="training precision: gradient bytes per element and compute rates "
                             "(amp keeps fp32 gradients; default: the workload's, fp32 rates)")
    parser.add_argument("--throughput", type=THROUGHPUT, metavar="SAMPLES_PER_S",
                        help="measured single-device samples/s; the compute profile is scaled "
                             "to it")


def stack_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of compare/simulate for the flags that were given."""
    kwargs: dict[str, Any] = {}
    for name in ("stack", "precision", "throughput"):
        if getattr(args, name, None) is not None:
            kwargs[name] = getattr(args, name)
    return kwargs
