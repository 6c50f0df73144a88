"""Helpers for the simulator's own tests: run a command, read the report, rows and segments."""

from __future__ import annotations

import json
from collections.abc import Callable

from reconciler.adapters.lvm_report import FULLREPORT_ARGV
from reconciler.runner import Command, CommandResult
from reconciler.simulate import SimulatedHost

# A 1 GiB disk holds (1 GiB - 1 MiB) / 4 MiB = 255 extents of 4 MiB.
EXTENTS_PER_GIB = 255


def run(host: SimulatedHost, *argv: str) -> CommandResult:
    return host.run(Command(argv=tuple(argv)))


def report(host: SimulatedHost) -> list[dict]:
    res = host.run(Command(argv=FULLREPORT_ARGV, mutates=False))
    assert res.rc == 0, res.stderr
    return json.loads(res.stdout)["report"]


def vg_report(host: SimulatedHost, vg: str) -> dict:
    return next(obj for obj in report(host) if obj.get("vg") and obj["vg"][0]["vg_name"] == vg)


def lv_rows(host: SimulatedHost, vg: str) -> dict[str, dict]:
    return {row["lv_full_name"].split("/")[1]: row for row in vg_report(host, vg)["lv"]}


def segs_of(host: SimulatedHost, vg: str, lv: str) -> list[dict]:
    obj = vg_report(host, vg)
    uuid = next(r["lv_uuid"] for r in obj["lv"] if r["lv_full_name"] == f"{vg}/{lv}")
    return [s for s in obj["seg"] if s["lv_uuid"] == uuid]


def open_device(host: SimulatedHost, path: str, pid: int, comm: str) -> Callable[[], None]:
    """Process ``pid`` opens a block device (a disk or an LV path) and keeps it open; call the
    returned function to close it. The kernel's open count, so lv_attr's 'o' and lvremove's
    "in use" follow it."""
    host.open_device(path, pid, comm)
    return lambda: host.close_device(path, pid)
