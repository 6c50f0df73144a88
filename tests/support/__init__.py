"""What tests share: size constants, where things are, and the helpers in this package.

* ``K``, ``M``, ``G``: bytes (the only definitions; tests import them from here).
* ``TESTS``, ``ROOT``, ``FIXTURES``: the tests directory, the repository, and the recorded
  fixtures (tests/fixtures), so a test file finds them wherever it sits in the tree.
* ``support.specs.spec()``: the one spec builder; ``support.nodes``: the one pass/converge
  harness; ``support.scenario``, ``support.fixtures``: the one-host scenario and the small
  simulated host (fixtures ``scenario`` and ``host``, registered in tests/conftest.py); the
  per-subsystem helpers (``simtools``, ``mdfix``, ``drbdsim``, ``lockd_sim``,
  ``iscsi_recorded``, ``seed000``, ``pcmk``: the Pacemaker CIB the tests and the lab declare).
"""

from pathlib import Path

K = 1024
M = 1024**2
G = 1024**3

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
FIXTURES = TESTS / "fixtures"
