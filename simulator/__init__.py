"""The discrete-event simulator of data-parallel training (SimPy).

Imports vocab and hwmodels only; never torch or mpi4py. The public face is :func:`simulate` and
:func:`compare` (from :mod:`simulator.api`), returning :class:`SimResult` and
:class:`Comparison`; :func:`plot_scaling` draws a sweep's scaling curves.
"""

from simulator.api import compare, simulate
from simulator.noise import NoiseSpec
from simulator.results import Comparison, SimResult


def plot_scaling(*args, **kwargs):
    """Scaling curves of a sweep table; see :func:`simulator.plots.plot_scaling`."""
    from simulator.plots import plot_scaling as plot  # matplotlib only when plotting
    return plot(*args, **kwargs)


__all__ = ["Comparison", "NoiseSpec", "SimResult", "compare", "plot_scaling", "simulate"]
