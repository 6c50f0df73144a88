"""The lvmlockd + sanlock two-node lab works: a shared VG made on node-a is usable on node-b.

Proves the setup of ``lockd.py`` that the cluster-LVM tests (issue 10) stand on: node-a
creates the shared VG, node-b starts its lockspace, an LV is exclusive on node-a (ext4 and a
file written there), node-b cannot take it while node-a holds it, node-a deactivates, node-b
activates it exclusively and reads the same bytes (md5).
"""

from __future__ import annotations

import json
import time

import pytest

from lockd import LOCKD_FULLREPORT_ARGV, lockd_nodes, lv_of  # noqa: F401  (fixture)

pytestmark = pytest.mark.lab

VG = "vgt"


def test_shared_vg_lv_moves_from_a_to_b_with_its_data(lockd_nodes):
    p = lockd_nodes
    a, b = p
    t0 = time.monotonic()
    assert (a.run(["hostname"]).out.strip(), b.run(["hostname"]).out.strip()) == ("node-a", "node-b")

    a.run(["vgcreate", "--shared", VG, a.disk("shared0")], timeout=300)
    t_vg = time.monotonic() - t0
    b.run(["vgchange", "--lock-start", VG], timeout=300)
    t_start = time.monotonic() - t0 - t_vg
    vg = json.loads(b.run(list(LOCKD_FULLREPORT_ARGV)).out)["report"][0]["vg"][0]
    assert (vg["vg_name"], vg["vg_shared"], vg["vg_lock_type"]) == (VG, "shared", "sanlock"), vg

    a.run(["lvcreate", "--yes", "--activate", "ey", "--name", "data", "--size", "32M", VG])
    lv = lv_of(json.loads(a.run(list(LOCKD_FULLREPORT_ARGV)).out), "data")
    assert lv["lv_active_exclusively"] == "active exclusively", lv
    a.sh(f"""
        mkfs.ext4 -q /dev/{VG}/data
        mkdir -p /mnt/data && mount /dev/{VG}/data /mnt/data
        head -c 8M /dev/urandom > /mnt/data/blob
        sync
    """)
    written = a.run(["md5sum", "/mnt/data/blob"]).out.split()[0]

    refused = b.run(["lvchange", "-aey", f"{VG}/data"], check=False)
    assert refused.rc == 5 and "LV locked by other host" in refused.err, refused

    a.run(["umount", "/mnt/data"])
    a.run(["lvchange", "-aln", f"{VG}/data"])
    assert a.run(["test", "-e", f"/dev/mapper/{VG}-data"], check=False).rc == 1
    b.run(["lvchange", "-aey", f"{VG}/data"])
    lv_b = lv_of(json.loads(b.run(list(LOCKD_FULLREPORT_ARGV)).out), "data")
    assert lv_b["lv_active_exclusively"] == "active exclusively", lv_b
    b.sh(f"mkdir -p /mnt/data && mount /dev/{VG}/data /mnt/data")
    assert b.run(["md5sum", "/mnt/data/blob"]).out.split()[0] == written
    b.run(["umount", "/mnt/data"])
    assert b.run(["e2fsck", "-fn", f"/dev/{VG}/data"], check=False).rc == 0
    print(f"\nlockd setup: boot {p.boot_s:.1f}s, daemons {p.start_s:.1f}s, vgcreate --shared {t_vg:.1f}s, "
          f"lock-start on node-b {t_start:.1f}s, whole test body {time.monotonic() - t0:.1f}s")
