"""A simulated host for tests and benchmarks: an independent model of the storage tools.

It imports only the runner types, the error classes and the fullreport argv, never the
planner or the parsers, so running our parser on its output checks something real.
"""

from .clock import SimClock
from .host import SimulatedCrash, SimulatedHost

__all__ = ["SimClock", "SimulatedCrash", "SimulatedHost"]
