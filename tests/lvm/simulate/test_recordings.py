"""The simulator's conventions checked against real lvm2 output recorded in qemu guests.

Recordings live in tests/fixtures/outputs/lvm/<case>.json: a '#' header line naming the
tool version, then the raw stdout of ``lvm fullreport`` with FULLREPORT_ARGV. For each,
laying the parsed report out again with the simulator's writer must give back the exact
bytes (indentation, separators, key order), and every row must carry our columns.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support import FIXTURES

from reconciler.adapters.lvm_report import (LV_COLUMNS, PV_COLUMNS, PVSEG_COLUMNS,
                                            SEG_COLUMNS, VG_COLUMNS)
from reconciler.simulate.render import format_report

FIXTURES = FIXTURES / "outputs" / "lvm"
COLUMNS = {"vg": VG_COLUMNS, "pv": PV_COLUMNS, "lv": LV_COLUMNS, "pvseg": PVSEG_COLUMNS,
           "seg": SEG_COLUMNS}


RECORDED = sorted(FIXTURES.glob("*.json"))


def test_the_recordings_are_there():
    assert len(RECORDED) >= 20, f"recorded fullreports missing from {FIXTURES}"


@pytest.mark.parametrize("path", RECORDED, ids=[p.stem for p in RECORDED])
def test_layout_matches_recorded_output(path: Path):
    header, body = path.read_text().split("\n", 1)
    assert header.startswith("#")
    report = json.loads(body)["report"]
    assert format_report(report) == body
    for obj in report:
        assert list(obj) in (["vg", "pv", "lv", "pvseg", "seg"], ["pv", "pvseg"])
        for section, rows in obj.items():
            for row in rows:
                assert tuple(row) == COLUMNS[section]
