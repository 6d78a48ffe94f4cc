"""gradsync: which way of synchronising gradients is fastest on my hardware?

This package is only the face of the project: the ``gradsync`` command and, as they land, the
public names re-exported from ``hwmodels``, ``simulator``, ``executor`` and ``calibration``.
"""

__version__ = "0.1.0"
