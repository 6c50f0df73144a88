"""Offline planning: capture what a pass observes on a host, and seed a simulated host from it.

Two rooms on one format: ``capturing`` writes a capture directory (``reconcile capture``),
``seeding`` builds the simulated host a pass runs against (``--simulate NAME`` for an
embedded host, ``--simulate DIR`` for one re-created from a capture); ``files`` is the
directory's format, which both share. ``adopting`` (``reconcile adopt``) observes a host, real
or simulated, as a capture does and writes the spec of what it has. The names below are what the command line and the
tests use.
"""

from reconciler.offline.capturing import capture, capture_simulated
from reconciler.offline.files import (BLOCK_DEVICES, COMMANDS_FILE, FORMAT, FULLREPORT_FILE,
                                      KERNEL_FILES, MANIFEST_FILE, VERSION_FILE, Capture,
                                      read_capture)
from reconciler.offline.seeding import SimulatedSource, simulated_host

__all__ = ["BLOCK_DEVICES", "COMMANDS_FILE", "FORMAT", "FULLREPORT_FILE", "KERNEL_FILES",
           "MANIFEST_FILE", "VERSION_FILE", "Capture", "SimulatedSource", "capture",
           "capture_simulated", "read_capture", "simulated_host"]
