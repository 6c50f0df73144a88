"""Fixtures for the storage lab (see tests/lab/README.md).

Every test under tests/lab is marked ``lab``. When this machine cannot boot guests, lab tests
are skipped with the reason and the fix (``bash tests/lab/setup.sh``) -- except under CI
(the ``CI`` environment variable set to anything but ``''``/``0``/``false``), where they fail:
CI must never go green by silently not running the lab.

Fixtures:
- ``lab``: session-wide check; the manifest written by setup.sh (dict).
- ``make_guest(name="g", disks=("256M", "256M"), **Guest kwargs) -> Guest``: boots a guest,
  closed after the test whatever happens.
- ``guest``: one guest named ``g`` with two 256 MiB disks (``/dev/vda``, ``/dev/vdb``).
- ``make_pair(disks=..., shared=("128M",), udev=False, **kw) -> Pair``: two guests ``a``/``b``
  booted in parallel, joined by one ``Link``, sharing the given disks (serials ``shared0``...).
- ``guest_pair``: ``make_pair()`` with one 128 MiB shared disk and one 128 MiB own disk each.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Disk, Guest, LabUnavailable, Link, boot, lab_config

LAB_DIR = Path(__file__).resolve().parent


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


# Fixtures that boot two guests at once: their tests are marked ``lab_pair`` so that
# tests/run-all.sh runs them apart from the one-guest tests (tests booting pairs by hand say
# so themselves).
PAIR_FIXTURES = {"make_pair", "guest_pair", "lockd_nodes", "lockd_nodes_unstarted", "dlm_nodes"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if LAB_DIR in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.lab)
            if PAIR_FIXTURES & set(getattr(item, "fixturenames", ())):
                item.add_marker(pytest.mark.lab_pair)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for g in getattr(item, "_lab_guests", ()):
            tail = g.console()[-4000:]
            rep.sections.append((f"lab guest {g.name}: console tail", tail or "(empty)"))


@pytest.fixture(scope="session")
def lab() -> dict:
    try:
        return lab_config()
    except LabUnavailable as exc:
        why = str(exc)
    if _in_ci():
        pytest.fail(f"lab unavailable under CI (lab tests never skip there): {why}", pytrace=False)
    pytest.skip(f"lab unavailable: {why}")


@pytest.fixture
def make_guest(lab, request):
    made: list[Guest] = []
    request.node._lab_guests = made

    def make(name: str = "g", disks: Iterable[int | str | Disk] = ("256M", "256M"), **kw) -> Guest:
        g = Guest(name, disks, **kw)
        made.append(g)
        g.start()
        g.wait_ready()
        return g

    yield make
    for g in made:
        g.close()


@pytest.fixture
def guest(make_guest) -> Guest:
    return make_guest("g")


@dataclass
class Pair:
    a: Guest
    b: Guest
    link: Link
    shared: list[Disk]

    def __iter__(self):  # a, b = guest_pair
        return iter((self.a, self.b))


@pytest.fixture
def make_pair(lab, request):
    made: list[Guest] = []
    disks: list[Disk] = []
    request.node._lab_guests = made

    def make(disks_each: Iterable[int | str] = ("128M",), shared: Iterable[int | str] = ("128M",),
             udev: bool = False, names: tuple[str, str] = ("a", "b"), **kw) -> Pair:
        shared_disks = [Disk(s, f"shared{i}", shared=True) for i, s in enumerate(shared)]
        disks.extend(shared_disks)
        link = Link()
        own = list(disks_each)
        a = Guest(names[0], [*own, *shared_disks], nics=[link.a], udev=udev, **kw)
        made.append(a)
        b = Guest(names[1], [*own, *shared_disks], nics=[link.b], udev=udev, **kw)
        made.append(b)
        boot(a, b)
        return Pair(a, b, link, shared_disks)

    yield make
    for g in made:
        g.close()
    for d in disks:
        d.remove()


@pytest.fixture
def guest_pair(make_pair) -> Pair:
    return make_pair()
