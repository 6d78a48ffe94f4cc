"""Speed and accuracy together: convergence of each strategy, and time-to-accuracy.

:mod:`convergence.nqm` is the noisy quadratic model (steps-to-target with an exact recurrence);
:mod:`convergence.penalty` the staleness penalty table (steps-to-target relative to ``sync``);
:mod:`convergence.tta` combines a penalty with the simulator's iteration time into a predicted
wall-clock time to a target, per strategy.
"""
