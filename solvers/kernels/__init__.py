"""Kernels: numpy-only algorithms shared by the environments, the exact solvers and the heuristics.

A kernel imports only numpy, the standard library, :mod:`mecopt.core` and :mod:`mecopt.problems` (no Pyomo, no solver
back-end, nothing from ``solvers.exact``/``solvers.heuristics``), so an environment can use it without pulling in a
solver; ``tests/test_architecture.py`` checks this.
"""
