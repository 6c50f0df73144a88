"""Issue 17: the node holding an exclusive LV of a shared (lvmlockd + sanlock) VG is reset.

node-a and node-b (tests/lab/lockd.py: udev, sanlock + lvmlockd, one shared disk), one boot,
one ``reconcile --once`` per node per round, both at once, the spec kept in /etc like a real
host's. What is proven on real lvm2 2.03.16 + lvmlockd + sanlock:

1. node-a (``create_on``) creates the shared VG and the LV, active exclusively on node-a;
   node-b starts its lockspace and leaves the LV alone;
2. ext4 on it, mounted on node-a, files before and a writer running (each file fsync'ed,
   then its md5 in a manifest in /var/lib, fsync'ed); node-a is reset mid-write
   (``Guest.reboot()``: qemu killed, booted again on the same disks; its /etc, with
   lvmlocal.conf's host_id, survives; its daemons, lockspace and LV lock do not);
3. while node-a is away node-b's passes never activate the LV (the spec gives it to node-a,
   whose lease sanlock still holds);
4. node-a's host starts sanlock and lvmlockd again (what its init system does at boot); its
   passes start the lockspace again and activate the LV exclusively there; node-b still has
   it off; the file system mounts (journal replay), every md5 checks, e2fsck is clean.
"""

from __future__ import annotations

import re
import textwrap
import time

import pytest

from lockd import lockd_nodes  # noqa: F401  (fixture)
from lockd_daemons import VG, lv_mode
from reconciler_lab import Run, _json, _wrap, reconcile_argv, wait_for

pytestmark = pytest.mark.lab

SPEC_DIR = "/etc/reconciler/spec"  # survives a reboot, as on a real host
STATE = "/var/lib/lab-data"
SPEC = """\
[vg.vgs]
nodes = ["node-a", "node-b"]
scope = "shared"
create_on = "node-a"
pvs = ["/dev/vda"]

[vg.vgs.lv.data]
size = "64M"
activation = { "node-a" = "exclusive", "*" = "inactive" }
"""

WRITER = r"""#!/bin/bash
mnt=$1 tag=$2 st=STATE i=0
mkdir -p $st
while [ ! -e /tmp/lab-stop-writer ]; do
  i=$((i+1))
  head -c 65536 /dev/urandom > /tmp/lab-blob
  dd if=/tmp/lab-blob of=$mnt/$tag$i bs=64k conv=fsync status=none || { echo "write $tag$i failed" >&2; exit 1; }
  echo "$(md5sum < /tmp/lab-blob | cut -d' ' -f1)  $tag$i" >> $st/$tag.md5
  sync $st/$tag.md5
  sleep 0.2
done
echo $i
""".replace("STATE", STATE)


def passes(p, logs: dict[str, list[Run]]) -> dict[str, Run]:
    """``reconcile --once`` on both nodes at once."""
    futs = {}
    for g in p.nodes:
        argv = reconcile_argv("--once", "--output", "json", spec=SPEC_DIR, node=g.name)
        futs[g.name] = (g, g.spawn(_wrap(argv, False), timeout=400, env={"NO_COLOR": "1"}))
    out = {}
    for name, (g, fut) in futs.items():
        res = g.wait(fut)
        out[name] = Run(res, _json(res.out))
        logs.setdefault(name, []).append(out[name])
    return out


def active_here(g) -> bool:
    return g.run(["test", "-e", f"/dev/mapper/{VG}-data"], check=False).rc == 0


def written(g, tag: str) -> int:
    return int(g.run(f"cat {STATE}/{tag}.md5 2>/dev/null | wc -l").out.strip())


def test_lockd_reboot_of_the_node_holding_an_exclusive_lv(lockd_nodes):
    p = lockd_nodes
    a, b = p
    t0 = time.monotonic()
    logs: dict[str, list[Run]] = {}
    for g in p.nodes:
        g.run(["mkdir", "-p", SPEC_DIR, STATE])
        g.write_file(f"{SPEC_DIR}/spec.toml", textwrap.dedent(SPEC))
        g.write_file(f"{STATE}/writer.sh", WRITER, mode="755")
        g.run("sync")
    host_conf = a.read_file("/etc/lvm/lvmlocal.conf")

    # 1. created on node-a, exclusive there; node-b's lockspace started, the LV off there
    for _ in range(12):
        runs = passes(p, logs)
        if all(r.rc == 0 for r in runs.values()) and lv_mode(a) == "ex":
            break
        time.sleep(1)
    else:
        raise AssertionError("create: not converged\n" + "\n".join(f"== {n}\n{r}" for n, r in runs.items()))
    assert f"LS sanlock lvm_{VG}" in b.run(["lvmlockctl", "--info"]).out
    assert lv_mode(b) == "off" and not active_here(b)
    t_create = time.monotonic() - t0

    # 2. ext4 on node-a, files before, a writer; node-a reset mid-write
    a.sh(f"mkfs.ext4 -q /dev/{VG}/data && mkdir -p /mnt/data && mount /dev/{VG}/data /mnt/data && "
         f"for i in 1 2 3 4; do head -c 1M /dev/urandom > /mnt/data/before$i; done && sync && "
         f"cd /mnt/data && md5sum before* > {STATE}/before.md5 && sync")
    a.run(["rm", "-f", "/tmp/lab-stop-writer"])
    writer = a.spawn(f"{STATE}/writer.sh /mnt/data w 2>&1", timeout=900)
    wait_for(lambda: written(a, "w") >= 5, 120, "node-a's writer: 5 files")
    a.reboot()
    assert writer.exception() is not None  # the guest went away under it
    t_reset = time.monotonic()
    n_w = written(a, "w")
    assert n_w >= 5
    assert a.read_file("/etc/lvm/lvmlocal.conf") == host_conf  # /etc survived the reset
    assert not active_here(a)

    # 3. node-a away: node-b's pass leaves the LV alone (node-a's lease is still on the disk)
    runs = passes(p, logs)
    assert runs["node-b"].rc != 1, runs["node-b"]
    assert lv_mode(b) == "off" and not active_here(b)

    # 4. node-a's host starts its daemons again (its init system's job); its passes take the
    # lockspace and the LV back; node-b still leaves it alone
    p.start_daemons(a)
    for _ in range(15):
        runs = passes(p, logs)
        assert lv_mode(b) == "off" and not active_here(b), runs["node-b"]
        if all(r.rc == 0 for r in runs.values()) and lv_mode(a) == "ex":
            break
        time.sleep(2)
    else:
        raise AssertionError("after node-a's reset: not converged\n"
                             + "\n".join(f"== {n}\n{r}" for n, r in runs.items()))
    t_back = time.monotonic() - t_reset
    a.sh(f"""
        mkdir -p /mnt/data  # /mnt is a tmpfs: gone with the reset
        mount /dev/{VG}/data /mnt/data
        cd /mnt/data && md5sum --quiet -c {STATE}/before.md5 && md5sum --quiet -c {STATE}/w.md5
        cd / && umount /mnt/data
        e2fsck -fn /dev/{VG}/data
    """, timeout=180)
    runs = passes(p, logs)
    assert all(r.rc == 0 for r in runs.values()), runs
    assert all(r.doc and not r.doc["applied"] for r in runs.values()), runs
    ran_b = "".join(r.log for r in logs["node-b"])
    assert not re.search(r"ran lvchange (-a|--activate)\S* \S*vgs/data", ran_b), ran_b[-3000:]
    print(f"created in {t_create:.0f}s; {n_w} files written before the reset; node-a exclusive "
          f"again {t_back:.0f}s after it; total {time.monotonic() - t0:.0f}s")
