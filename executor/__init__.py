"""The real executor: data-parallel torch training across MPI ranks with gradsync's strategies.

Importing this package loads neither torch nor mpi4py; the modules that need them import them.
Run it with ``gradsync run ...`` or directly with ``mpiexec -n N python -m executor ...``
(see :mod:`executor.__main__`).
"""
