"""Every recording under tests/fixtures/outputs/ is compared with the simulator by some test.

The comparing modules declare what they compare (``COMPARES``: their scenarios' files, each
scenario test asserting it compared exactly its share, plus what they show is not modelled
and refused); this test enumerates the fixture files and fails on one nobody claims, on a
claim with no file behind it, and on an INDEX.md that does not describe exactly the
recordings beside it. A recording nobody compares would otherwise rot unnoticed.
"""

from __future__ import annotations

import importlib.util
import re
import sys

from support import FIXTURES, TESTS

OUTPUTS = FIXTURES / "outputs"
COMPARING_MODULES = (TESTS / "lvm" / "simulate" / "test_recorded_scenarios.py",
                     TESTS / "lvm" / "simulate" / "test_handover_recorded.py",
                     TESTS / "md" / "simulate" / "test_md_simulator.py",
                     TESTS / "lockd" / "simulate" / "test_lockd_fixture_facts.py",
                     TESTS / "lockd" / "simulate" / "test_lockd_recordings.py",
                     TESTS / "iscsi" / "simulate" / "test_iscsi_simulator_vs_recorded.py",
                     TESTS / "drbd" / "simulate" / "test_drbd_simulator.py",
                     TESTS / "lockd" / "simulate" / "test_lockd_dlm_recordings.py",
                     TESTS / "pacemaker" / "test_pacemaker_recordings.py",
                     TESTS / "simulate" / "test_claimed_recordings.py")


def _claims() -> dict[str, str]:
    """Recording (relative to OUTPUTS) -> the module that compares it."""
    out: dict[str, str] = {}
    for path in COMPARING_MODULES:
        sys.path.insert(0, str(path.parent))
        try:
            spec = importlib.util.spec_from_file_location(f"coverage_{path.stem}", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(str(path.parent))
        for name in module.COMPARES:
            out[name] = path.name
    return out


CLAIMS = _claims()
INDEXES = sorted(OUTPUTS.rglob("INDEX.md"))


def _recordings() -> set[str]:
    return {str(p.relative_to(OUTPUTS)) for p in OUTPUTS.rglob("*")
            if p.is_file() and p.name != "INDEX.md"}


def test_every_recording_is_compared_by_some_test():
    unclaimed = sorted(_recordings() - set(CLAIMS))
    assert not unclaimed, f"recordings no test compares: {unclaimed}"


def test_every_claimed_recording_exists():
    missing = sorted(set(CLAIMS) - _recordings())
    assert not missing, f"claimed but not recorded: {missing}"


def test_each_index_describes_exactly_the_recordings_beside_it():
    assert len(INDEXES) >= 3
    for index in INDEXES:
        here = index.parent
        nested = [i.parent for i in INDEXES if i != index and here in i.parents]
        files = {str(p.relative_to(here)) for p in here.rglob("*")
                 if p.is_file() and p.name != "INDEX.md"
                 and not any(n in p.parents for n in nested)}
        # a recording is named in backquotes, by its path below the INDEX.md's directory
        named = set(re.findall(r"`((?:[\w-]+/)?[\w.-]+\.(?:txt|json|res))`", index.read_text()))
        assert files - named == set(), f"{index}: recordings it does not describe"
        assert named - files == set(), f"{index}: describes recordings that do not exist"
