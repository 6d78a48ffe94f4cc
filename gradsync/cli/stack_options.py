"""The software stack and configuration flags of ``simulate`` and ``sweep``.

``--stack NAME|FILE`` (a preset of ``hwmodels/data/stacks.yaml`` or a user's YAML),
``--precision fp32|amp|fp16|bf16``, ``--throughput SAMPLES_PER_S`` (a measured one-device
throughput the compute profile is scaled to) and ``--gpus-per-node G`` (the name GPU users
expect for ``--devices-per-node``). :func:`stack_kwargs` turns them into the keyword arguments
of :func:`simulator.api.compare` and :func:`simulator.api.simulate`.
"""

from __future__ import annotations

import argparse
from typing import Any

from hwmodels.specs import PRECISIONS
from hwmodels.stacks import list_stacks
from vocab.argtypes import DEVICES_PER_NODE, THROUGHPUT
from vocab.errors import SpecError


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --stack, --precision, --throughput and --gpus-per-node to ``parser``."""
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
    parser.add_argument("--gpus-per-node", type=DEVICES_PER_NODE, metavar="G",
                        help="GPUs (ranks) per node; the same as --devices-per-node")


def stack_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of compare/simulate for the flags that were given."""
    kwargs: dict[str, Any] = {}
    for name in ("stack", "precision", "throughput"):
        if getattr(args, name, None) is not None:
            kwargs[name] = getattr(args, name)
    gpus = getattr(args, "gpus_per_node", None)
    if gpus is not None:
        devices = getattr(args, "devices_per_node", None)
        if devices is not None and devices != gpus:
            raise SpecError("--gpus-per-node", gpus, f"the same as --devices-per-node "
                            f"({devices}), or only one of them")
        kwargs["devices_per_node"] = gpus
    return kwargs
