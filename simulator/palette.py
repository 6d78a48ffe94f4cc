"""The one palette of every figure: a colour per strategy, per model, per operation.

A strategy has the same colour in every plot and notebook (``gs.strategy_colour("delayed")``);
models get colours from a disjoint set, so that orange never means a strategy in one figure and
a model in the next. Colours are from the Okabe-Ito palette (distinguishable with the common
colour-vision deficiencies) and, for models and parts of an iteration, muted tones of it.
"""

from __future__ import annotations

from types import MappingProxyType

#: Strategy -> colour. ``sync`` is the baseline, in black-grey; the bucketing rule variant
#: shares its strategy's hue family only through a lighter tone.
STRATEGY_COLOURS = MappingProxyType({
    "sync": "#404040",
    "layerwise": "#E69F00",        # orange
    "bucketed": "#0072B2",         # blue
    "bucketed+mgwfbp": "#56B4E9",  # sky blue
    "delayed": "#009E73",          # green
    "crossiter": "#CC79A7",        # purple-pink
    "crossiter+mgwfbp": "#E3A6C8",
    "ddp": "#D55E00",              # vermilion: the executor's torch DDP baseline
})

#: Model -> colour: none of them is a strategy colour.
MODEL_COLOURS = MappingProxyType({
    "alexnet": "#8C6D31",
    "googlenet": "#7F7F7F",
    "googlenet-aux": "#A89A74",
    "resnet50": "#843C39",
    "vgg16": "#B5CF6B",
    "bert-base": "#6B6ECF",
    "gpt2-small": "#393B79",
})

#: Parts of an iteration (breakdowns) and trace operations (timelines).
PART_COLOURS = MappingProxyType({"compute": "#9ecae1", "update": "#fdae6b",
                                 "interference": "#bcbddc", "exposed comm": "#e6550d"})
OP_COLOURS = MappingProxyType({"forward": "#6baed6", "backward": "#3182bd",
                               "update": "#fdae6b", "allreduce": "#e6550d", "wait": "#bdbdbd"})
OTHER = "#999999"
#: Series that are neither strategies nor models (rank counts, staleness values), in order of
#: use: muted tones none of which is a strategy's or a zoo model's colour.
SERIES_COLOURS = ("#3B6EA5", "#C4843C", "#5B9E5B", "#B04A4A", "#7E6BAF", "#8F7560",
                  "#C77FB3", "#8C8C8C")
_EXTRA_MODEL_COLOURS = ("#637939", "#7B4173", "#BD9E39", "#AD494A", "#5254A3", "#8CA252")


def strategy_colour(name: str) -> str:
    """The colour of strategy ``name`` (a plan label such as ``bucketed+mgwfbp`` too)."""
    if name in STRATEGY_COLOURS:
        return STRATEGY_COLOURS[name]
    return STRATEGY_COLOURS.get(str(name).split("+")[0].split(" ")[0], OTHER)


def model_colour(name: str) -> str:
    """The colour of model ``name``; a model outside the zoo gets a stable colour from a
    reserve that no strategy uses."""
    if name in MODEL_COLOURS:
        return MODEL_COLOURS[name]
    return _EXTRA_MODEL_COLOURS[sum(map(ord, str(name))) % len(_EXTRA_MODEL_COLOURS)]


def strategy_colours(names) -> list[str]:
    """Colours for a sequence of strategy names, in order (for pandas ``color=``)."""
    return [strategy_colour(str(n)) for n in names]
