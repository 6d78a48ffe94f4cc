"""Hardware models: devices, links, node topologies, fabrics, clusters and collective costs.

Pure Python (numpy, networkx, PyYAML): never imports torch, mpi4py or any other gradsync part.
"""
