"""The shared vocabulary every part of gradsync speaks: the ground floor.

Errors (:mod:`vocab.errors`), units (:mod:`vocab.units`), strategy plans
(:mod:`vocab.strategies`), the trace schema (:mod:`vocab.trace`), the run record
(:mod:`vocab.runrecord`), workloads (:mod:`vocab.workload`, the zoo in ``workloads/``) and
compute profiles (:mod:`vocab.profile`, measured ones in ``profiles/``). Nothing here knows
about hardware, simulation, torch or MPI: ``hwmodels``, ``simulator``, ``executor`` and
``calibration`` all build on it, and it imports none of them.
"""
