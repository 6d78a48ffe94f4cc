"""Calibration: fit the simulator to measured runs, validate it on held-out runs, ask what-ifs.

Calibration reads run directories (``trace.parquet`` + ``run.json``) and microbenchmark tables;
it never imports the executor (it may launch it as a subprocess). Modules:

- :mod:`calibration.microbench`: the MPI microbenchmark run under ``mpiexec`` (OSU-like);
- :mod:`calibration.benchnet`: launches it and reads its table;
- :mod:`calibration.fitting`: alpha/beta(/gamma) fits with scipy, breakpoints, overheads;
- :mod:`calibration.runs`: reading executor run directories;
- :mod:`calibration.calibrate`: the whole fit, written as a cluster file with provenance;
- :mod:`calibration.validate`: measured vs predicted iteration times of held-out runs;
- :mod:`calibration.whatif`: swap the fabric, the device or the scale of a fitted cluster;
- :mod:`calibration.scaling`: rank counts on one machine (core sharing) and the compute fit;
- :mod:`calibration.hostload`: other programs' share of the machine while we measure;
- :mod:`calibration.protocol`: the held-out protocol end to end.
"""
