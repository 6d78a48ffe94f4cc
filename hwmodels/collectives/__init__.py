"""Collective communication: closed-form costs, affine costs, schedules, rings and a tuner.

Import from the submodules (``hwmodels.collectives.cost`` etc.); this package adds no names.
"""
