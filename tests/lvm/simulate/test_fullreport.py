"""The rendered fullreport: valid JSON, lvm's columns, lvm's layout, fast."""

from __future__ import annotations

import json

from support import G
from support.simtools import report, run

from reconciler.adapters.lvm_report import (FULLREPORT_ARGV, LV_COLUMNS, PV_COLUMNS,
                                            PVSEG_COLUMNS, SEG_COLUMNS, VG_COLUMNS)
from reconciler.runner import Command
from reconciler.simulate import SimulatedHost
from reconciler.simulate.demo import default_host

SECTIONS = {"vg": VG_COLUMNS, "pv": PV_COLUMNS, "lv": LV_COLUMNS, "pvseg": PVSEG_COLUMNS,
            "seg": SEG_COLUMNS}


def _check_columns(objects: list[dict]) -> None:
    for obj in objects:
        for section, rows in obj.items():
            for row in rows:
                assert tuple(row) == SECTIONS[section], section
                assert all(isinstance(v, str) for v in row.values())


def test_every_section_has_the_report_columns_in_order(host):
    run(host, "lvcreate", "--yes", "--name", "data", "--size", f"{G // 2}b", "vg")
    assert run(host, "pvcreate", "--yes", "/dev/vdd").rc == 0
    objects = report(host)
    assert [list(obj) for obj in objects] == [["vg", "pv", "lv", "pvseg", "seg"],
                                             ["pv", "pvseg"]]  # vg, then the orphan vdd
    _check_columns(objects)


def test_layout_is_lvms_json_writer(host):
    run(host, "pvcreate", "--yes", "/dev/vdd")
    res = host.run(Command(argv=FULLREPORT_ARGV, mutates=False))
    lines = res.stdout.split("\n")
    assert lines[0] == "  {"
    assert lines[1] == '      "report": ['
    assert lines[2] == "          {"
    assert lines[3] == '              "vg": ['
    assert lines[4].startswith('                  {"vg_name":"vg", "vg_uuid":"')
    assert lines[5] == "              ]"
    assert lines[6] == "              ,"
    assert res.stdout.endswith("      ]\n  }\n")
    assert "          ,\n          {\n" in res.stdout  # between report objects


def test_empty_host_and_empty_sections():
    h = SimulatedHost()
    res = h.run(Command(argv=FULLREPORT_ARGV, mutates=False))
    assert res.stdout == '  {\n      "report": [\n      ]\n  }\n'
    h.add_device("/dev/vdb", G)
    h.add_vg("vg", ["/dev/vdb"])
    out = h.run(Command(argv=FULLREPORT_ARGV, mutates=False)).stdout
    assert '              "lv": [\n              ]\n' in out
    assert json.loads(out)["report"][0]["seg"] == []


def test_sizes_are_bytes_and_counts_are_extents(host):
    run(host, "pvcreate", "--yes", "/dev/vdd")
    run(host, "lvcreate", "--yes", "--name", "data", "--size", f"{100 * 2**20}b", "vg")
    (obj, orphans) = report(host)
    vg = obj["vg"][0]
    assert vg["vg_extent_size"] == str(4 << 20)
    assert vg["vg_extent_count"] == "510" and vg["vg_free_count"] == "485"
    assert vg["vg_size"] == str(510 * (4 << 20)) and vg["vg_attr"] == "wz--n-"
    vdb = obj["pv"][0]
    assert (vdb["pv_name"], vdb["pv_major"], vdb["pv_minor"]) == ("/dev/vdb", "254", "16")
    assert vdb["dev_size"] == str(G) and vdb["pv_pe_count"] == "255"
    assert vdb["pv_pe_alloc_count"] == "25" and vdb["pv_free"] == str(230 * (4 << 20))
    lv = obj["lv"][0]
    assert lv["lv_size"] == str(100 << 20) and lv["lv_attr"] == "-wi-a-----"
    assert obj["pvseg"][:2] == [
        {"pv_uuid": vdb["pv_uuid"], "pvseg_start": "0", "pvseg_size": "25",
         "lv_uuid": lv["lv_uuid"]},
        {"pv_uuid": vdb["pv_uuid"], "pvseg_start": "25", "pvseg_size": "230", "lv_uuid": ""}]
    assert obj["seg"] == [{"lv_uuid": lv["lv_uuid"], "segtype": "linear", "seg_start_pe": "0",
                           "seg_size_pe": "25", "stripes": "1", "devices": "/dev/vdb(0)"}]
    vdd = orphans["pv"][0]
    assert (vdd["pv_attr"], vdd["pv_pe_count"], vdd["pv_size"]) == ("---", "0", str(G))
    assert orphans["pvseg"] == [{"pv_uuid": vdd["pv_uuid"], "pvseg_start": "0",
                                 "pvseg_size": "0", "lv_uuid": ""}]


def test_rows_are_sorted_like_lvms_full_sort_keys(host):
    for name in ("zeta", "alpha", "mid"):
        run(host, "lvcreate", "--yes", "--name", name, "--size", f"{8 << 20}b", "vg")
    obj = report(host)[0]
    assert [r["lv_name"] for r in obj["lv"]] == ["alpha", "mid", "zeta"]
    order = [p["pv_uuid"] for p in obj["pv"]]
    starts = [(order.index(r["pv_uuid"]), int(r["pvseg_start"])) for r in obj["pvseg"]]
    assert starts == sorted(starts)


def test_demo_host_renders_seed_000():
    objects = report(default_host())
    _check_columns(objects)
    by_vg = {o["vg"][0]["vg_name"]: o for o in objects if "vg" in o}
    assert set(by_vg) == {"vgarc", "vgglobal"}
    glob = by_vg["vgglobal"]
    assert [p["pv_name"] for p in glob["pv"]] == ["/dev/mapper/lun02", "/dev/mapper/lun30"]
    assert {r["lv_name"]: r["lv_size"] for r in glob["lv"]} == {"lvrepnb": str(128 * G),
                                                               "mygfs": str(324 * G)}
    assert by_vg["vgarc"]["vg"][0]["vg_free"] == "0"
    assert len(objects) == 2  # lun31 is a bare device: no PV label, not in the report


def test_ten_thousand_lvs_render_whole():
    # How fast this renders is bench/bench_plan.py's business (a figure, not a timed test).
    h = SimulatedHost()
    for i in range(1000):
        h.add_device(f"/dev/mapper/disk{i}", 64 * G)
    h.add_vg("big", [f"/dev/mapper/disk{i}" for i in range(1000)])
    for i in range(10_000):
        h.add_lv("big", f"lv{i:05d}", G, pvs=[f"/dev/mapper/disk{i // 10}"])
    res = h.run(Command(argv=FULLREPORT_ARGV, mutates=False))
    assert res.rc == 0
    obj = json.loads(res.stdout)["report"][0]
    assert len(obj["lv"]) == 10_000 and len(obj["pv"]) == 1000
