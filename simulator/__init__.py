"""The discrete-event simulator of data-parallel training (SimPy).

Imports hwmodels only; never torch or mpi4py.
"""
